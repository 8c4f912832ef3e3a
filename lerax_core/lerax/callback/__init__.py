"""Callbacks: monitor and control training from inside the jitted loop.

Callbacks and logging backends provided by plugins are importable from here too,
e.g. `from lerax.callback import ConsoleBackend` once `lerax-console` is installed.
`LoggingCallback` and `AbstractLoggingBackend` live in [`lerax.logging`][] and
are importable from here as well.
"""

from typing import TYPE_CHECKING, Any

from lerax import host
from lerax.callback._callback import (
    AbstractCallback,
    AbstractStatelessCallback,
    EmptyCallback,
)
from lerax.callback.callback_list import CallbackList
from lerax.callback.checkpoint import (
    CheckpointCallback,
    CheckpointError,
    has_checkpoint,
)
from lerax.callback.context import (
    AbstractContext,
    IterationContext,
    ResetContext,
    StepContext,
    StopReason,
    TrainingContext,
)
from lerax.callback.evaluation import EvalCallback, EvalState
from lerax.callback.resolve import make, resolve_callback
from lerax.plugin.hookspecs import AbstractLoggingBackend

if TYPE_CHECKING:  # imported lazily by __getattr__ below
    from lerax.logging import LoggingCallback

__all__ = [
    "AbstractCallback",
    "AbstractContext",
    "AbstractLoggingBackend",
    "AbstractStatelessCallback",
    "CallbackList",
    "CheckpointCallback",
    "CheckpointError",
    "EmptyCallback",
    "EvalCallback",
    "EvalState",
    "IterationContext",
    "LoggingCallback",
    "ResetContext",
    "StepContext",
    "StopReason",
    "TrainingContext",
    "has_checkpoint",
    "host",
    "make",
    "resolve_callback",
]


def __getattr__(attribute: str) -> Any:
    """`LoggingCallback` from [`lerax.logging`][] (imported on first use: that
    package imports this one), and plugin-provided classes such as
    `ConsoleBackend` through the registry."""
    if attribute == "LoggingCallback":
        from lerax.logging import LoggingCallback

        return LoggingCallback
    from lerax.plugin.registry import (
        FIRST_PARTY_EXPORTS,
        UnknownNameError,
        get_registry,
        lookup,
    )

    registration = get_registry().find_export(attribute)
    if registration is not None:
        return registration.load()
    if attribute in FIRST_PARTY_EXPORTS:
        try:
            lookup(FIRST_PARTY_EXPORTS[attribute])
        except UnknownNameError as error:
            raise ImportError(
                f"cannot import {attribute}: {error}", name=f"{__name__}.{attribute}"
            ) from None
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
