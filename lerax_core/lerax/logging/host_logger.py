"""The host side of a `LoggingCallback`: run names, timing, and the dispatcher."""

import itertools
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lerax import host
from lerax.callback.context import StopReason
from lerax.logging.dispatch import BackendDispatcher
from lerax.plugin.hookspecs import AbstractLoggingBackend

_runs = itertools.count()


class HostLogger:
    """Names runs, times iterations, and hands events to a `BackendDispatcher`.

    Reached from compiled code through [`lerax.host`][] by its `handle`, which
    lives until `close()`.
    """

    def __init__(
        self,
        backends: Sequence[AbstractLoggingBackend],
        name: str | None,
        close_at_end: bool,
        log_every: int = 1,
    ):
        self.dispatcher = BackendDispatcher(backends)
        self.name = name
        self.close_at_end = close_at_end
        self.log_every = log_every
        self._last: tuple[float, int] | None = None
        self.run_name: str | None = None
        """The name of the current (or last) run."""
        self.resume: dict[str, Any] | None = None
        """Set by `learn(..., resume_from=...)`: the saved run's name, step and ids."""
        self.handle = host.register(self)

    def run_ids(self) -> dict[str, str]:
        """Each backend's `resume_id()` that is not `None`, by backend name."""
        ids = {}
        for backend in self.dispatcher.backends:
            run_id = backend.resume_id()
            if run_id is not None:
                ids[self.dispatcher.names[id(backend)]] = run_id
        return ids

    def start(
        self,
        step: np.ndarray,
        total_timesteps: np.ndarray,
        *,
        hyperparameters: dict[str, Any],
        algorithm: str,
        env: str,
    ) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_name = self.name or f"{algorithm}-{env}-{stamp}-{os.getpid()}.{next(_runs)}"
        if self.resume is not None:
            run_name = self.name or self.resume["run_name"] or run_name
            ids = self.resume["run_ids"]
            self.dispatcher.submit_each(
                "lerax_on_resume",
                {
                    name: {"step": int(step), "run_id": ids.get(name)}
                    for name in self.dispatcher.names.values()
                },
            )
            self.resume = None  # once: a later run through this logger is new
        self.run_name = run_name
        # Speed is timed from here, the host call made as the loop starts, so the
        # first iteration has one too. A backend's own clock would start late by
        # however long the backends before it took to start (an import, a W&B run).
        self._last = (time.perf_counter(), int(step))
        self.dispatcher.submit(
            "lerax_on_training_start",
            run_name=run_name,
            hyperparameters={
                **hyperparameters,
                "run/total_timesteps": int(total_timesteps),
            },
        )

    def iteration(
        self,
        step: np.ndarray,
        values: np.ndarray,
        has_values: np.ndarray,
        *,
        names: tuple[str, ...],
        optional: tuple[str, ...] = (),
        last: bool = False,
    ) -> None:
        if not has_values:  # sent before the first iteration finished
            return
        metrics = dict(zip(names, values.tolist(), strict=True))
        for name in optional:  # reported by callbacks: NaN means nothing this time
            if math.isnan(metrics[name]):
                del metrics[name]
        skipped = self.log_every > 1 and int(metrics["time/iteration"]) % self.log_every
        if skipped and not last:
            return
        now, step = time.perf_counter(), int(step)
        if self._last is not None and now > self._last[0]:
            metrics["time/steps_per_second"] = (step - self._last[1]) / (
                now - self._last[0]
            )
        self._last = (now, step)
        self.dispatcher.submit("lerax_on_iteration", step=step, metrics=metrics)

    def end(self, step: np.ndarray, stop_reason: np.ndarray) -> None:
        reason = StopReason(int(stop_reason)).label
        self.dispatcher.submit("lerax_on_training_end", step=int(step), reason=reason)
        if self.close_at_end:
            self.close()

    def close(self) -> None:
        """Deliver pending events, close the backends and release the handle."""
        self.dispatcher.close()
        host.release(self.handle)
