"""Deliver logging events to backends on a background thread."""

import atexit
import importlib.metadata
import queue
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import Any

from lerax.plugin.hookspecs import AbstractLoggingBackend
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
            name = _describe(backend, index)
            self.manager.register_checked(backend, name)
            self.names[id(backend)] = name
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._closed = False
        self._stop_sent = False
        atexit.register(self.close)

    def submit(self, hook: str, **kwargs: Any) -> None:
        """Queue a call of `hook` on every backend; blocks only if the queue is full."""
        with self._lock:
            if self._closed:  # used again after close(): close again at exit
                self._closed = False
                atexit.register(self.close)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="lerax-logging", daemon=True
                )
                self._thread.start()
        self._queue.put((hook, kwargs))

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            self.call(*item)

    def call(self, hook: str, kwargs: dict[str, Any]) -> None:
        """Call `hook` on each backend now, isolating failures."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            try:
                impl.function(*(kwargs[arg] for arg in impl.argnames))
            except BaseException as error:
                if isinstance(error, KeyboardInterrupt) and _on_main_thread():
                    raise  # the user's Ctrl-C, not the backend's failure
                self._report(impl.plugin_name, hook, error)
        if hook == "lerax_on_training_start":
            # Backends may have just started libraries with exit handlers of their
            # own (W&B does); atexit runs handlers last-registered-first, so
            # registering again makes ours deliver pending events before those.
            atexit.unregister(self.close)
            atexit.register(self.close)

    def _report(self, backend: str, hook: str, error: BaseException) -> None:
        if backend in self._reported:
            return
        self._reported.add(backend)
        report(
            f"logging backend {backend} raised in {hook}: "
            f"{type(error).__name__}: {error}. Training and the other backends "
            f"continue; further errors from {backend} are not reported."
        )

    def close(self) -> None:
        """Deliver every queued event, then close each backend. Idempotent.

        Only a close that completes counts: if it is interrupted (Ctrl-C while
        waiting for a slow backend), the one registered at exit finishes it.
        """
        with self._lock:
            if self._closed:
                return
            thread = self._thread
            if thread is not None and not self._stop_sent:
                self._queue.put(_STOP)
                self._stop_sent = True
        if thread is not None:
            thread.join()
        self.call("lerax_close", {})
        with self._lock:
            self._thread, self._stop_sent, self._closed = None, False, True
        atexit.unregister(self.close)


def report(message: str) -> None:
    """Warn with `message`, or print it if warnings are errors (`-W error`).

    It runs on the logging thread, where a warning raised as an exception would
    kill the thread and, with it, every backend's delivery.
    """
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    except Warning:
        print(f"lerax: {message}", file=sys.stderr, flush=True)


def _describe(backend: AbstractLoggingBackend, index: int) -> str:
    """`CsvBackend#1 (lerax-csv)`: the class, its position and its distribution."""
    name = f"{type(backend).__name__}#{index}"
    package = type(backend).__module__.partition(".")[0]
    distributions = importlib.metadata.packages_distributions().get(package, [])
    return f"{name} ({distributions[0]})" if distributions else name


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
