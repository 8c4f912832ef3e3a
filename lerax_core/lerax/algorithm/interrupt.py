"""Ctrl-C stops a jitted `learn` at the end of the current iteration.

A compiled training loop cannot see Python's signal handlers: the main thread is
blocked inside XLA until training ends. So `learn` runs the loop on a worker
thread while the main thread waits in Python, where a first Ctrl-C sets a flag
that the loop polls every few iterations (in `continue_training`, never per step).
Training then ends normally at that iteration, every callback's `on_training_end` runs and logging
backends flush, and [`TrainingInterrupted`][lerax.algorithm.TrainingInterrupted]
is raised with the policy reached. A second Ctrl-C stops waiting at once.
"""

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Key

from lerax.callback import host
from lerax.callback._callback import AbstractStatelessCallback
from lerax.callback.context import IterationContext

T = TypeVar("T")

_requested = threading.Event()


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped `learn`; `policy` is the policy trained up to that point."""

    def __init__(self, policy: Any):
        super().__init__("training interrupted; the policy reached is in .policy")
        self.policy = policy


def interrupt_requested() -> bool:
    """Whether Ctrl-C asked the current `learn` to stop."""
    return _requested.is_set()


POLL_EVERY_STEPS = 2**14
"""Environment steps between two polls for Ctrl-C (a fraction of a second)."""
POLL_AT_LEAST_EVERY = 64
"""Iterations between two polls at most, however small the iterations."""


class StopOnInterrupt(AbstractStatelessCallback):
    """Ends training at the first poll after Ctrl-C was pressed.

    `learn` adds it to every run. It polls the host every `poll_every`
    iterations (about `POLL_EVERY_STEPS` environment steps, and at least every
    `POLL_AT_LEAST_EVERY` iterations), so its cost is a fraction of one host
    call per iteration.
    """

    poll_every: int = eqx.field(static=True)

    def __init__(self, steps_per_iteration: int):
        self.poll_every = min(
            POLL_AT_LEAST_EVERY, max(1, POLL_EVERY_STEPS // steps_per_iteration)
        )

    def continue_training(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> Bool[Array, ""]:
        def poll():
            return host.ask(interrupt_requested, jnp.bool_)

        stop = jax.lax.cond(
            ctx.iteration % self.poll_every == 0, poll, lambda: jnp.asarray(False)
        )
        return ~stop


def run_interruptibly(train: Callable[[], T]) -> tuple[T, bool]:
    """Run `train()`, turning a first Ctrl-C into a stop request.

    Returns `(result, interrupted)`. Off the main thread (where Python cannot
    handle signals) `train` simply runs.
    """
    _requested.clear()
    if threading.current_thread() is not threading.main_thread():
        return train(), False

    outcome: dict[str, Any] = {}

    def worker() -> None:
        try:
            outcome["result"] = jax.block_until_ready(train())
        except BaseException as error:  # re-raised on the calling thread
            outcome["error"] = error

    def on_interrupt(signum: int, frame: Any) -> None:
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()
        print(
            "Stopping after this iteration (Ctrl-C again to stop waiting).",
            file=sys.stderr,
        )

    thread = threading.Thread(target=worker, name="lerax-learn", daemon=True)
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.05)
    finally:
        signal.signal(signal.SIGINT, previous)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], _requested.is_set()
