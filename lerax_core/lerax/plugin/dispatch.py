"""Deliver logging events to backends on a background thread."""

import atexit
import queue
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from lerax.plugin.backend import AbstractLoggingBackend
from lerax.plugin.registry import LeraxPluginManager

_STOP = object()


class BackendDispatcher:
    """Calls the logging hooks of several backends, off the training thread.

    Events go through a bounded queue, so a slow backend (a network flush, a
    console refresh) does not stall the jitted loop unless it falls a whole queue
    behind, and nothing queued is dropped. A backend that raises is reported once
    by name and keeps receiving events, and the others are unaffected. Pending
    events are delivered and every backend closed at `close()` or at interpreter
    exit, whichever comes first.
    """

    def __init__(
        self, backends: Sequence[AbstractLoggingBackend], *, maxsize: int = 1024
    ):
        self.manager = LeraxPluginManager()
        self.backends = tuple(backends)
        self.names: dict[int, str] = {}
        for index, backend in enumerate(backends):
            if not isinstance(backend, AbstractLoggingBackend):
                raise TypeError(
                    f"backends must be AbstractLoggingBackend instances, got "
                    f"{type(backend).__name__}."
                )
            name = f"{type(backend).__name__}#{index}"
            self.manager.register_checked(backend, name)
            self.names[id(backend)] = name
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._closed = False
        atexit.register(self.close)

    def submit(self, hook: str, **kwargs: Any) -> None:
        """Queue a call of `hook` on every backend; blocks only if the queue is full."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lerax-logging", daemon=True
                )
                self._thread.start()
            if self._closed:  # used again after close(): close again at exit
                self._closed = False
                atexit.register(self.close)
        self._queue.put((hook, kwargs))

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            self.call(*item)

    def call(self, hook: str, kwargs: dict[str, Any]) -> None:
        """Call `hook` on each backend now, isolating failures."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            try:
                impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as error:
                self._report(impl.plugin_name, hook, error)

    def _report(self, backend: str, hook: str, error: Exception) -> None:
        if backend in self._reported:
            return
        self._reported.add(backend)
        warnings.warn(
            f"logging backend {backend} raised in {hook}: "
            f"{type(error).__name__}: {error}. Training and the other backends "
            f"continue; further errors from {backend} are not reported.",
            RuntimeWarning,
            stacklevel=2,
        )

    def close(self) -> None:
        """Deliver every queued event, then close each backend. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            was_closed, self._closed = self._closed, True
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
        if not was_closed:
            atexit.unregister(self.close)
            self.call("lerax_close", {})
