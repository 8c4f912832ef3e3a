"""Deliver logging events to backends, each on its own thread."""

import atexit
import contextlib
import functools
import inspect
import os
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from lerax._background import lower_priority
from lerax.plugin.hookspecs import LOGGING_HOOKS, AbstractLoggingBackend
from lerax.plugin.registry import LeraxPluginManager, installed_entry_points

CLOSE_TIMEOUT = 30.0
"""Seconds `close()` waits for all backends to deliver and close; a backend
still busy then is abandoned (reported, with the rows it had not written)."""

EXIT_NOTICE_AFTER = 0.5
"""Seconds the close at interpreter exit waits before saying what it waits for."""

_STOP = object()


class _Worker:
    """One backend's queue and thread: a slow or stuck backend delays only itself."""

    def __init__(self, dispatcher: "BackendDispatcher", backend, name: str, size: int):
        self.dispatcher, self.backend, self.name = dispatcher, backend, name
        self.queue: queue.Queue = queue.Queue()  # unbounded: rows are bounded in put
        self.maxsize = size
        self.takes_members = takes_members(backend)
        self.delivering: Any = None  # the event the backend is being called with
        self.thread: threading.Thread | None = None
        # Set when the thread has finished. Waited on instead of `Thread.join`,
        # which, when a signal handler raises during it (Ctrl-C), marks a thread
        # that is still running as stopped (CPython 3.11), so that no later join
        # waits for it again.
        self.done = threading.Event()
        self.thinned = 0

    def capacity(self) -> int:
        """Rows queued at most: `maxsize` iterations' worth. A backend that
        takes members gets a row per member and one for the aggregate each
        iteration of a many-member run."""
        members = self.dispatcher.members
        return self.maxsize * (members + 1 if members and self.takes_members else 1)

    def put(self, item: Any) -> None:
        """Queue `item`. Iteration rows that find `capacity()` rows queued are
        thinned (dropped and counted) so that training never waits for this
        backend; other events (start, end, close) are always queued, so that a
        full queue cannot cost a backend its close."""
        self._start()
        row = item is not _STOP and item[0] == "lerax_on_iteration"
        if row and self.queue.qsize() >= self.capacity():
            self.thinned += 1
            if self.thinned == 1:
                report(
                    f"logging backend {self.name} is slower than training: "
                    f"it is {self.maxsize} iterations behind, so rows are dropped "
                    f"for it until it catches up (training and the other "
                    f"backends are not slowed)."
                )
            return
        self.queue.put(item)

    def rows_queued(self) -> int:
        """Iteration rows not yet delivered (a snapshot): those queued, and the
        one the backend is writing, which is lost too if it is abandoned."""
        with self.queue.mutex:
            items = [*self.queue.queue, self.delivering]
        return sum(
            1
            for item in items
            if item is not None
            and item is not _STOP
            and item[0] == "lerax_on_iteration"
        )

    def _start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name=f"lerax-logging-{self.name}", daemon=True
            )
            self.thread.start()

    def busy(self) -> bool:
        """Whether the thread was started and has not finished."""
        return self.thread is not None and not self.done.is_set()

    def _run(self) -> None:
        lower_priority()
        try:
            while (item := self.queue.get()) is not _STOP:
                with self.queue.mutex:  # counted by rows_queued until written
                    self.delivering = item
                self.dispatcher.call_one(self.backend, self.name, *item)
                with self.queue.mutex:
                    self.delivering = None
        finally:
            self.done.set()


class BackendDispatcher:
    """Calls the logging hooks of several backends, off the training thread.

    Each backend has its own bounded queue and thread, so a slow backend (a
    network flush, a console refresh) delays neither training nor the other
    backends: when it falls `maxsize` iterations behind, its rows are thinned
    and reported. A backend that raises is reported once by name and keeps
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
        self.members = 0
        """Members of the run being logged (0: a single run); set at its start."""
        self._workers: list[_Worker] | None = None
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        self._closing = self._closed = False
        self._timeout = self._deadline = 0.0
        atexit.register(self._close_at_exit)
        _sigterm_as_ctrl_c(self)

    def submit(
        self,
        hook: str,
        *,
        member: int | None = None,
        group: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue a call of `hook` on every backend; never waits for a slow one
        on iteration rows.

        An event of one `member` of many goes only to the backends that take
        members; `member=None` is the run itself, or the group's aggregate run
        when `group` is given.
        """
        kwargs = {**kwargs, "member": member, "group": group}
        with self._lock:
            if self._closing:
                raise RuntimeError(
                    "this logger was closed; create a new LoggingCallback for "
                    "another run."
                )
            workers = self._open_workers()
        for worker in workers:
            if member is None or worker.takes_members:
                worker.put((hook, kwargs))

    def submit_each(self, hook: str, kwargs: dict[str, dict[str, Any]]) -> None:
        """Queue a call of `hook` on each backend with its own arguments,
        `kwargs[name]` by the backend's name in `names`."""
        with self._lock:
            workers = self._open_workers()
        for worker in workers:
            worker.put((hook, kwargs[worker.name]))

    def _open_workers(self) -> list[_Worker]:
        """The backends' workers, made on first use (under `_lock`)."""
        if self._workers is None:
            self._workers = [
                _Worker(self, b, self.names[id(b)], self._maxsize)
                for b in self.backends
            ]
        return self._workers

    def call_one(
        self, backend: AbstractLoggingBackend, name: str, hook: str, kwargs: dict
    ) -> None:
        """Call `hook` on one backend now, isolating its failures."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            if impl.plugin is not backend:
                continue
            try:
                impl.function(
                    *(kwargs[arg] for arg in impl.argnames),
                    **{arg: kwargs[arg] for arg in impl.kwargnames if arg in kwargs},
                )
            except BaseException as error:
                if isinstance(error, KeyboardInterrupt) and _on_main_thread():
                    raise  # the user's Ctrl-C, not the backend's failure
                self._report(name, hook, error)
        if hook == "lerax_on_training_start":
            # Backends may have just started libraries with exit handlers of their
            # own (W&B does); atexit runs handlers last-registered-first, so
            # registering again makes ours deliver pending events before those.
            atexit.unregister(self._close_at_exit)
            atexit.register(self._close_at_exit)

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

    def start_close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Queue every backend's close after its pending events, without waiting.
        The first call sets the deadline, `timeout` seconds from now, that every
        later wait shares; later calls do nothing. Nothing can be submitted after."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._timeout, self._deadline = timeout, time.monotonic() + timeout
            workers = self._open_workers()  # even if nothing was submitted
        for worker in workers:  # close is queued once: lerax_close runs once
            worker.put(("lerax_close", {}))
            worker.put(_STOP)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Deliver every queued event, then close each backend. Idempotent.

        Waits at most `timeout` seconds in all (from the first `start_close` or
        `close`); a backend still busy then is abandoned and reported with the
        rows it had not written. Ctrl-C stops the wait but not the delivery:
        what is still queued is written before the interpreter exits, unless a
        Ctrl-C (or SIGTERM) interrupts that wait too, which abandons it and
        says how many rows were lost.
        """
        self.start_close(timeout)
        try:
            self._wait()
        except KeyboardInterrupt:
            self.note_waiting("interrupted: stopped waiting for", "at exit")
            raise

    def rows_pending(self) -> dict[str, int]:
        """Queued rows of each backend still running, by backend name."""
        return {
            worker.name: worker.rows_queued()
            for worker in self._workers or []
            if worker.busy()
        }

    def _wait(self, until: float | None = None) -> bool:
        """Wait for the backends' threads until `until` (default: the deadline);
        report those still busy at the deadline. Whether all finished."""
        deadline = self._deadline if until is None else min(until, self._deadline)
        for worker in self._workers or []:
            if worker.thread is not None:
                worker.done.wait(max(0.0, deadline - time.monotonic()))
        busy = self.rows_pending()
        if until is not None and busy and time.monotonic() < self._deadline:
            return False  # `until` came first
        with self._lock:
            if self._closed:
                return True
            self._closed = True
        for name, rows in busy.items():
            report(
                f"logging backend {name} did not finish within {self._timeout:g} "
                f"s of close() and was abandoned; {rows} queued rows were not "
                f"written. The other backends are complete."
            )
        atexit.unregister(self._close_at_exit)
        _sigterm_as_ctrl_c(self, closed=True)
        return True

    def note_waiting(self, what: str, when: str) -> None:
        """Say, on stderr, which backends are still writing and how many rows."""
        for name, rows in self.rows_pending().items():
            _say(
                f"{what} logging backend {name}: its {rows} queued rows are "
                f"written {when} (Ctrl-C abandons them)."
            )

    def abandon(self) -> None:
        """Stop waiting for the backends for good and say what was lost."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for name, rows in self.rows_pending().items():
            _say(
                f"abandoned logging backend {name}: {rows} queued rows were "
                f"not written and it was not closed."
            )
        atexit.unregister(self._close_at_exit)
        _sigterm_as_ctrl_c(self, closed=True)

    def _close_at_exit(self) -> None:
        """Close at interpreter exit: say what is being waited for; Ctrl-C or
        SIGTERM abandons the wait, saying how many rows were lost."""
        try:
            self.start_close()
            if not self._wait(time.monotonic() + EXIT_NOTICE_AFTER):
                self.note_waiting("waiting for", "before exiting")
                self._wait()
        except KeyboardInterrupt:
            self.abandon()


@contextlib.contextmanager
def closes_deferred() -> Iterator[list[BackendDispatcher]]:
    """Within this context, `close_soon` only starts a dispatcher's close and
    adds it to the list yielded: the caller waits for it. `learn` does, after
    the loop has returned its policy, so that Ctrl-C while slow backends close
    cannot cost the policy."""
    global _deferred
    previous, _deferred = _deferred, []
    try:
        yield _deferred
    finally:
        _deferred = previous


def close_soon(dispatcher: BackendDispatcher) -> None:
    """Close `dispatcher` now, or start closing it if the caller waits for it
    (see `closes_deferred`)."""
    dispatcher.start_close()
    deferred = _deferred
    if deferred is None:
        dispatcher.close()
    else:
        deferred.append(dispatcher)


_deferred: list[BackendDispatcher] | None = None

_open: set[int] = set()
"""The ids of the dispatchers not yet closed (SIGTERM raises KeyboardInterrupt)."""


def _sigterm_as_ctrl_c(dispatcher: BackendDispatcher, *, closed: bool = False) -> None:
    """While a dispatcher is open, SIGTERM raises `KeyboardInterrupt` as Ctrl-C
    does, instead of ending the process at once: queued rows are then written
    and backends closed at exit. Only when SIGTERM has Python's default
    behaviour and on the main thread (where handlers are set)."""
    if closed:
        _open.discard(id(dispatcher))
        return
    _open.add(id(dispatcher))
    if not _on_main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    if not _open:  # every logger is closed: end the process as by default
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise KeyboardInterrupt("SIGTERM")


def _say(message: str) -> None:
    print(f"lerax: {message}", file=sys.stderr, flush=True)


def takes_members(backend: AbstractLoggingBackend) -> bool:
    """Whether `backend` implements a logging hook with a `member` argument, and
    so receives every member's run when `learn` trains many."""
    for hook in LOGGING_HOOKS:
        method = getattr(backend, hook, None)
        if method is not None and "member" in inspect.signature(method).parameters:
            return True
    return False


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
    """`CsvBackend#1 (lerax-csv)`: the class, its position and, for a plugin's
    backend, its distribution."""
    name = f"{type(backend).__name__}#{index}"
    distribution = _plugin_distribution(type(backend).__module__.partition(".")[0])
    return f"{name} ({distribution})" if distribution else name


@functools.cache
def _plugin_distribution(package: str) -> str | None:
    """The distribution whose `lerax` entry point lives in top-level `package`.

    From the plugins' entry points, not `importlib.metadata.packages_distributions`,
    which reads every installed distribution's file list (0.2 s per backend
    here, on every `LoggingCallback` when it was called).
    """
    for entry_point in installed_entry_points():
        if entry_point.module.partition(".")[0] == package and entry_point.dist:
            return entry_point.dist.name
    return None


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
