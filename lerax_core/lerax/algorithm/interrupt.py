"""Ctrl-C and SIGTERM stop a jitted `learn` at the end of the current iteration.

A compiled training loop cannot see Python's signal handlers: the thread that
runs it is blocked inside XLA until training ends. So `learn` runs the loop on
a worker thread while the main thread waits in Python, where a first Ctrl-C
(or SIGTERM, what schedulers send before killing a job) sets a flag that the
loop polls every few iterations, never per step. Training then ends normally
at that iteration, every callback's `on_training_end` runs and logging backends
flush, and [`TrainingInterrupted`][lerax.algorithm.TrainingInterrupted] is
raised with the policy reached. A second Ctrl-C stops waiting at once: before
the loop has returned, without a policy; while logging backends are closing,
with the policy, their queued rows still written before the interpreter exits
(a further Ctrl-C there abandons them, saying how many rows were lost).

The worker thread runs with the caller's JAX settings (`jax.disable_jit()`,
`jax.debug_nans(True)`, ...), which JAX keeps per thread.
"""

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool

from lerax import host

T = TypeVar("T")

_requested = threading.Event()
_signal_received: list[int] = []

POLL_EVERY_STEPS = 2**14
"""Environment steps between two polls for Ctrl-C (a fraction of a second)."""
POLL_AT_LEAST_EVERY = 64
"""Iterations between two polls at most, however small the iterations."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop training at the next poll (SIGTERM: what schedulers send)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped `learn`; `policy` is the policy reached.

    `policy` is `None` only when a second Ctrl-C stopped waiting before the
    loop handed back its policy.
    """

    def __init__(self, policy: Any, signum: int = signal.SIGINT):
        name = signal.Signals(signum).name
        super().__init__(
            f"training interrupted by {name}; the policy reached is in .policy"
        )
        self.policy = policy
        self.signum = signum


def interrupt_requested() -> bool:
    """Whether Ctrl-C or SIGTERM asked the current `learn` to stop."""
    return _requested.is_set()


def poll_every(steps_per_iteration: int) -> int:
    """Iterations between two polls: about `POLL_EVERY_STEPS` environment steps,
    and at most `POLL_AT_LEAST_EVERY` iterations."""
    return min(POLL_AT_LEAST_EVERY, max(1, POLL_EVERY_STEPS // steps_per_iteration))


def poll_interrupt() -> Bool[Array, ""]:
    """From traced code: whether a stop was requested (one host call)."""
    return host.ask(interrupt_requested, jnp.bool_)


def _jax_thread_settings() -> Callable[[], contextlib.ExitStack]:
    """A way to re-enter, on another thread, the JAX settings of this one.

    JAX keeps context-manager settings (`disable_jit`, `debug_nans`,
    `default_device`, ...) per thread; a worker thread would silently drop
    them. Reads JAX's table of settings; if a JAX version lacks it, the
    public context managers that matter most for training are carried.
    """
    try:
        from jax._src.config import config_states

        states = list(config_states.values())
    except ImportError:  # pragma: no cover - a JAX without the table
        states = [jax.disable_jit, jax.debug_nans, jax.debug_infs]
    local = [
        (state, state.value)
        for state in states
        if hasattr(state, "get_global") and state.value != state.get_global()
    ]

    def enter() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for state, value in local:
            stack.enter_context(state(value))
        return stack

    return enter


@contextlib.contextmanager
def _stop_signals_handled(on_signal: Callable[[int, Any], None]) -> Iterator[None]:
    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _StopWaiting(BaseException):
    """Ctrl-C while logging backends close: stop waiting for them."""


def run_interruptibly(train: Callable[[], T]) -> tuple[T | None, int | None]:
    """Run `train()`, turning a first Ctrl-C or SIGTERM into a stop request.

    Returns `(result, signum)`: `signum` is the first signal received, or
    `None`. Logging backends that training closes at its end are waited for
    here, after `train()` has returned: a Ctrl-C or SIGTERM then stops the
    wait (their queued rows are written before the interpreter exits) and
    returns the result. A second Ctrl-C before `train()` has returned raises
    `TrainingInterrupted` without a policy. Off the main thread (where Python
    cannot handle signals) `train` simply runs.
    """
    from lerax.logging.dispatch import closes_deferred

    _requested.clear()
    _signal_received.clear()
    if threading.current_thread() is not threading.main_thread():
        return train(), None

    outcome: dict[str, Any] = {}
    settings = _jax_thread_settings()

    def worker() -> None:
        try:
            with settings():
                outcome["result"] = jax.block_until_ready(train())
        except BaseException as error:  # re-raised on the calling thread
            outcome["error"] = error

    def on_signal(signum: int, frame: Any) -> None:
        if not _signal_received:
            _signal_received.append(signum)
        if "result" in outcome:  # the policy is here: only the logs are left
            raise _StopWaiting
        if _requested.is_set():
            raise TrainingInterrupted(None, _signal_received[0])
        _requested.set()
        print(
            f"{signal.Signals(signum).name}: stopping after this iteration "
            f"(Ctrl-C again to stop waiting).",
            file=sys.stderr,
            flush=True,
        )

    thread = threading.Thread(target=worker, name="lerax-learn", daemon=True)
    with _stop_signals_handled(on_signal), closes_deferred() as closing:
        try:
            thread.start()
            while thread.is_alive():
                thread.join(0.05)
            if "error" in outcome:
                raise outcome["error"]
            for dispatcher in closing:
                dispatcher.close()
        except _StopWaiting:  # raised only once the result is in
            for dispatcher in closing:
                dispatcher.note_waiting("stopped waiting for", "before exit")
    return outcome["result"], (_signal_received[0] if _signal_received else None)
