"""Callbacks: monitor and control training from inside the jitted loop.

Callbacks and logging backends provided by plugins are importable from here too,
e.g. `from lerax.callback import ConsoleBackend` once `lerax-console` is installed.
"""

from typing import Any

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
from lerax.callback.logging import LoggingCallback
from lerax.callback.resolve import make, resolve_callback
from lerax.plugin.backend import AbstractLoggingBackend

__all__ = [
    "AbstractCallback",
    "AbstractContext",
    "AbstractLoggingBackend",
    "AbstractStatelessCallback",
    "CallbackList",
    "EmptyCallback",
    "IterationContext",
    "LoggingCallback",
    "ResetContext",
    "StepContext",
    "TrainingContext",
    "make",
    "resolve_callback",
]


def __getattr__(attribute: str) -> Any:
    """Resolve plugin-provided classes such as `ConsoleBackend` through the registry."""
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
