"""Turn what users pass as `callback=` into one callback."""

from typing import Any

from lerax.callback._callback import AbstractCallback, EmptyCallback
from lerax.callback.callback_list import CallbackList
from lerax.plugin.hookspecs import AbstractLoggingBackend
from lerax.plugin.registry import lookup

ACCEPTED = (
    "an AbstractCallback, an AbstractLoggingBackend, a plugin name such as "
    "'console', a list of these, or None"
)


def make(name: str, /, **options: Any) -> AbstractCallback | AbstractLoggingBackend:
    """Build the callback or logging backend a plugin registered as `name`.

    `options` go to the plugin's factory, e.g. `make("tensorboard", log_dir="tb")`.
    Unknown names raise an error listing the installed ones.
    """
    registration = lookup(name)
    built = registration.load()(**options)
    expected = (
        AbstractCallback if registration.kind == "callback" else AbstractLoggingBackend
    )
    if not isinstance(built, expected):
        raise TypeError(
            f"plugin {registration.plugin!r} registered {name!r} as a {registration.kind} "
            f"but its factory returned {type(built).__name__}, not an "
            f"{expected.__name__}."
        )
    return built


def resolve_callback(callback: Any) -> AbstractCallback:
    """Return the single callback that `learn` runs for `callback`.

    Names are looked up in the plugin registry; all logging backends, named or
    given as instances, share one [`LoggingCallback`][lerax.logging.LoggingCallback]
    so the host is crossed once per iteration however many there are, and which
    closes them when training ends.
    """
    from lerax.logging.callback import LoggingCallback

    items = list(callback) if isinstance(callback, list | tuple) else [callback]
    _refuse_duplicates(items)
    callbacks: list[AbstractCallback] = []
    backends: list[AbstractLoggingBackend] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            item = make(item)
        if isinstance(item, AbstractCallback):
            callbacks.append(item)
        elif isinstance(item, AbstractLoggingBackend):
            backends.append(item)
        else:
            raise TypeError(f"callback must be {ACCEPTED}; got {type(item).__name__}.")
    if backends:
        callbacks.append(LoggingCallback(backends, close_at_end=True))
    if not callbacks:
        return EmptyCallback()
    return callbacks[0] if len(callbacks) == 1 else CallbackList(callbacks)


def _refuse_duplicates(items: list[Any]) -> None:
    """A name or object given twice would run twice: writing every row twice."""
    names: set[str] = set()
    objects: set[int] = set()
    for item in items:
        if item is None:
            continue
        if isinstance(item, str):
            if item in names:
                raise ValueError(
                    f"callback names {item!r} twice; each name may appear once. To "
                    f"run it twice on purpose, build each with its own options: "
                    f"[make({item!r}, ...), make({item!r}, ...)]."
                )
            names.add(item)
        elif id(item) in objects:
            raise ValueError(
                f"callback holds the same {type(item).__name__} object twice; each "
                f"callback or backend may appear once."
            )
        else:
            objects.add(id(item))
