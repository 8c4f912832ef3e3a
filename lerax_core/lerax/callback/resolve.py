"""Turn what users pass as `callback=` into one callback."""

from typing import Any

from lerax.callback._callback import AbstractCallback, EmptyCallback
from lerax.callback.callback_list import CallbackList

ACCEPTED = (
    "an AbstractCallback, an AbstractLoggingBackend, a plugin name such as "
    "'console', a list of these, or None"
)


def resolve_callback(
    callback: Any, *, env: Any = None, policy: Any = None, algorithm: Any = None
) -> AbstractCallback:
    """Return the single callback that `learn` runs for `callback`."""
    if callback is None:
        return EmptyCallback()
    if isinstance(callback, AbstractCallback):
        return callback
    if isinstance(callback, list | tuple):
        callbacks = [resolve_callback(item) for item in callback]
        return callbacks[0] if len(callbacks) == 1 else CallbackList(callbacks)
    raise TypeError(f"callback must be {ACCEPTED}; got {type(callback).__name__}.")
