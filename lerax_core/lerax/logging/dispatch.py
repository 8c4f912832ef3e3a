"""Deliver logging events to backends, each on its own thread."""

import atexit
import importlib.metadata
import queue
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

from lerax.plugin.hookspecs import AbstractLoggingBackend
from lerax.plugin.registry import LeraxPluginManager

CLOSE_TIMEOUT = 30.0
"""Seconds `close()` waits for all backends to deliver and close; a backend
still busy then is abandoned (reported, with the rows it had not written)."""

CONTROL_WAIT = 1.0
"""Seconds a start or end event waits for room in a full backend queue."""

_STOP = object()


class _Worker:
    """One backend's queue and thread: a slow or stuck backend delays only itself."""

    def __init__(self, dispatcher: "BackendDispatcher", backend, name: str, size: int):
        self.dispatcher, self.backend, self.name = dispatcher, backend, name
        self.queue: queue.Queue = queue.Queue(size)
        self.thread: threading.Thread | None = None
        self.thinned = 0

    def put(self, item: Any, timeout: float = CONTROL_WAIT) -> None:
        """Queue `item`. Iteration rows that find the queue full are thinned
        (dropped and counted) so that training never waits for this backend;
        other events wait at most `timeout` seconds for room."""
        self._start()
        if item is not _STOP and item[0] == "lerax_on_iteration":
            try:
                self.queue.put_nowait(item)
            except queue.Full:
                self.thinned += 1
                if self.thinned == 1:
                    report(
                        f"logging backend {self.name} is slower than training: "
                        f"it is {self.queue.maxsize} rows behind, so rows are "
                        f"dropped for it until it catches up (training and the "
                        f"other backends are not slowed)."
                    )
            return
        try:
            self.queue.put(item, timeout=max(timeout, 1e-3))
        except queue.Full:
            what = "its stop" if item is _STOP else item[0]
            report(f"logging backend {self.name} is stuck: {what} was dropped for it.")

    def offer(self, item: Any) -> bool:
        """Queue `item` if there is room now; whether it was queued."""
        self._start()
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name=f"lerax-logging-{self.name}", daemon=True
            )
            self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not _STOP:
            self.dispatcher.call_one(self.backend, self.name, *item)


class BackendDispatcher:
    """Calls the logging hooks of several backends, off the training thread.

    Each backend has its own bounded queue and thread, so a slow backend (a
    network flush, a console refresh) delays neither training nor the other
    backends: when it falls a whole queue behind, its rows are thinned and
    reported. A backend that raises is reported once by name and keeps
    receiving events. Pending events are delivered and every backend closed at
    `close()` or at interpreter exit, whichever comes first; `close()` waits at
    most `CLOSE_TIMEOUT` seconds and reports a backend that is still busy.
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
        self._maxsize = maxsize
        self._workers: list[_Worker] | None = None
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._closing = self._stop_sent = self._closed = False
        atexit.register(self.close)

    def submit(self, hook: str, **kwargs: Any) -> None:
        """Queue a call of `hook` on every backend; never waits for a slow one
        on iteration rows."""
        with self._lock:
            if self._closing:
                raise RuntimeError(
                    "this logger was closed; create a new LoggingCallback for "
                    "another run."
                )
            if self._workers is None:
                self._workers = [
                    _Worker(self, b, self.names[id(b)], self._maxsize)
                    for b in self.backends
                ]
        for worker in self._workers:
            worker.put((hook, kwargs))

    def submit_each(self, hook: str, kwargs: dict[str, dict[str, Any]]) -> None:
        """Queue a call of `hook` on each backend with its own arguments,
        `kwargs[name]` by the backend's name in `names`."""
        with self._lock:
            if self._workers is None:
                self._workers = [
                    _Worker(self, b, self.names[id(b)], self._maxsize)
                    for b in self.backends
                ]
        for worker in self._workers:
            worker.put((hook, kwargs[worker.name]))

    def call_one(
        self, backend: AbstractLoggingBackend, name: str, hook: str, kwargs: dict
    ) -> None:
        """Call `hook` on one backend now, isolating its failures."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            if impl.plugin is not backend:
                continue
            try:
                impl.function(*(kwargs[arg] for arg in impl.argnames))
            except BaseException as error:
                if isinstance(error, KeyboardInterrupt) and _on_main_thread():
                    raise  # the user's Ctrl-C, not the backend's failure
                self._report(name, hook, error)
        if hook == "lerax_on_training_start":
            # Backends may have just started libraries with exit handlers of their
            # own (W&B does); atexit runs handlers last-registered-first, so
            # registering again makes ours deliver pending events before those.
            atexit.unregister(self.close)
            atexit.register(self.close)

    def call(self, hook: str, kwargs: dict[str, Any]) -> None:
        """Call `hook` on each backend now, on this thread, isolating failures."""
        for backend in self.backends:
            self.call_one(backend, self.names[id(backend)], hook, kwargs)

    def _report(self, backend: str, hook: str, error: BaseException) -> None:
        if backend in self._reported:
            return
        self._reported.add(backend)
        report(
            f"logging backend {backend} raised in {hook}: "
            f"{type(error).__name__}: {error}. Training and the other backends "
            f"continue; further errors from {backend} are not reported."
        )

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Deliver every queued event, then close each backend. Idempotent.

        Waits at most `timeout` seconds in all; a backend still busy then is
        abandoned and reported with the rows it had not written.
        """
        with self._lock:
            if self._closed:
                return
            self._closing = True
            if self._workers is None:  # nothing was ever submitted
                self._workers = [
                    _Worker(self, b, self.names[id(b)], self._maxsize)
                    for b in self.backends
                ]
            workers, stop_sent, self._stop_sent = self._workers, self._stop_sent, True
        deadline = time.monotonic() + timeout
        if not stop_sent:
            # Every worker gets its close and stop as soon as its queue has room,
            # so that one full queue does not use up the others' time.
            pending = {w: [("lerax_close", {}), _STOP] for w in workers}
            while pending and time.monotonic() < deadline:
                for worker, items in list(pending.items()):
                    while items and worker.offer(items[0]):
                        items.pop(0)
                    if not items:
                        del pending[worker]
                if pending:
                    time.sleep(0.01)
        # Only a close that completes counts: if Ctrl-C interrupts the wait, the
        # close registered at exit waits again.
        for worker in workers:
            assert worker.thread is not None
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                report(
                    f"logging backend {worker.name} did not finish within "
                    f"{timeout:g} s of close() and was abandoned; about "
                    f"{worker.queue.qsize()} queued events were not delivered. "
                    f"The other backends are complete."
                )
        with self._lock:
            self._closed = True
        atexit.unregister(self.close)


def report(message: str) -> None:
    """Warn with `message`, or print it if warnings are errors (`-W error`).

    It runs on the logging threads, where a warning raised as an exception would
    kill the thread and, with it, the backend's delivery.
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
