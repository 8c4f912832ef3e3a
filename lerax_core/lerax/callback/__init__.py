"""Callbacks: monitor and control training from inside the jitted loop."""

from lerax.callback._callback import (
    AbstractCallback,
    AbstractStatelessCallback,
    EmptyCallback,
)
from lerax.callback.callback_list import CallbackList
from lerax.callback.context import (
    AbstractContext,
    IterationContext,
    ResetContext,
    StepContext,
    TrainingContext,
)

__all__ = [
    "AbstractCallback",
    "AbstractContext",
    "AbstractStatelessCallback",
    "CallbackList",
    "EmptyCallback",
    "IterationContext",
    "ResetContext",
    "StepContext",
    "TrainingContext",
]
