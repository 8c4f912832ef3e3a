"""The host side of a `LoggingCallback`: run names, timing, members, the dispatcher.

Every call arrives once per host crossing with a leading axis over the members
it carries (length 1 for a single run; for many members, those of one device).
"""

import itertools
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lerax import host, members
from lerax.callback.context import StopReason
from lerax.logging.dispatch import BackendDispatcher, close_soon
from lerax.logging.names import DEPRECATED_METRICS, SPREAD_PREFIXES, SUMMARY_SUFFIXES
from lerax.plugin.hookspecs import AbstractLoggingBackend

_runs = itertools.count()


def member_run_name(group: str, member: int, members: int) -> str:
    """`group/member-3`: a member's run name (zero-padded so that names sort)."""
    return f"{group}/member-{member:0{len(str(max(members - 1, 0)))}d}"


def _key_text(key_data: np.ndarray) -> str:
    return "[" + ", ".join(str(int(v)) for v in key_data.reshape(-1)) + "]"


class HostLogger:
    """Names runs, times iterations, and hands events to a `BackendDispatcher`.

    Reached from compiled code through [`lerax.host`][] by its `handle`, which
    lives until `close()`. With many members, each member's events go to the
    backends that take a `member` argument, and the aggregate run (the group's:
    mean, std, min and max across members) to every backend; it comes from the
    crossing that carries member 0, so it is sent once, from process 0.
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
        self._many = False
        self._members = 0
        self._open: set[int] = set()
        self._last: dict[int | None, tuple[float, int]] = {}
        self._started = False
        # Devices' crossings may arrive on several threads at once.
        self._lock = threading.RLock()
        self.run_name: str | None = None
        """The name of the current (or last) run (a group's, for many members)."""
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

    def _run_name(self, algorithm: str, env: str) -> str:
        if self.name is not None:
            return self.name
        stamp = members.shared_name() or (
            f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        )
        return f"{algorithm}-{env}-{stamp}.{next(_runs)}"

    def start(
        self,
        member: np.ndarray,
        step: np.ndarray,
        total_timesteps: np.ndarray,
        varied_values: np.ndarray,
        key_data: np.ndarray,
        count: np.ndarray,
        *,
        running: np.ndarray,
        hyperparameters: dict[str, Any],
        varied: tuple[str, ...],
        algorithm: str,
        env: str,
        many: bool,
    ) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                self._many, self._members = many, int(count[0])
                self.dispatcher.members = self._members if many else 0
                self.run_name = self._run_name(algorithm, env)
                if self.resume is not None:  # a single run: `learn` refuses many
                    self.run_name = (
                        self.name or self.resume["run_name"] or self.run_name
                    )
                    ids = self.resume["run_ids"]
                    self.dispatcher.submit_each(
                        "lerax_on_resume",
                        {
                            name: {"step": int(step[0]), "run_id": ids.get(name)}
                            for name in self.dispatcher.names.values()
                        },
                    )
                    self.resume = None  # once: a later run through this logger is new
            shared = {
                **hyperparameters,
                "run/total_timesteps": int(total_timesteps[0]),
            }
            # Speed is timed from here, the host call made as the loop starts, so
            # the first iteration has one too. A backend's own clock would start
            # late by however long the backends before it took to start.
            now = time.perf_counter()
            if not self._many:
                self._last[None] = (now, int(step[0]))
                self.dispatcher.submit(
                    "lerax_on_training_start",
                    run_name=self.run_name,
                    hyperparameters=shared,
                )
                return
            if 0 in member:
                self._last[None] = (now, int(step[0]))
                self.dispatcher.submit(
                    "lerax_on_training_start",
                    run_name=self.run_name,
                    hyperparameters={
                        **shared,
                        "run/members": self._members,
                        "run/varied": ", ".join(varied),
                    },
                    group=self.run_name,
                )
            assert self.run_name is not None
            for i in np.flatnonzero(running):
                index = int(member[i])
                self._open.add(index)
                self._last[index] = (now, int(step[i]))
                # float32 values, written as the shortest decimal that reads back
                # as them (0.01, not 0.009999999776482582)
                own = {
                    name: float(str(value))
                    for name, value in zip(varied, varied_values[i], strict=True)
                }
                self.dispatcher.submit(
                    "lerax_on_training_start",
                    run_name=member_run_name(self.run_name, index, self._members),
                    hyperparameters={
                        **shared,
                        **own,
                        "run/group": self.run_name,
                        "run/member": index,
                        "run/members": self._members,
                        "run/key": _key_text(key_data[i]),
                    },
                    member=index,
                    group=self.run_name,
                )

    def _timed(self, who: int | None, step: int, metrics: dict[str, float]) -> None:
        """Add `time/steps_per_second` since `who`'s previous row."""
        now = time.perf_counter()
        last = self._last.get(who)
        if last is not None and now > last[0]:
            metrics["time/steps_per_second"] = (step - last[1]) / (now - last[0])
        self._last[who] = (now, step)

    def _skipped(self, metrics: dict[str, float], last: bool) -> bool:
        """Whether `log_every` leaves this row out (never the last one)."""
        if self.log_every == 1 or last:
            return False
        return int(metrics["time/iteration"]) % self.log_every != 0

    def iteration(
        self,
        member: np.ndarray,
        step: np.ndarray,
        values: np.ndarray,
        has_values: np.ndarray,
        summary: np.ndarray,
        summary_step: np.ndarray,
        summarised: np.ndarray,
        *,
        running: np.ndarray,
        names: tuple[str, ...],
        optional: tuple[str, ...] = (),
        last: bool = False,
    ) -> None:
        with self._lock:
            for i in np.flatnonzero(running & has_values):
                metrics = dict(zip(names, values[i].tolist(), strict=True))
                for name in optional:  # from callbacks: NaN means nothing this time
                    if math.isnan(metrics[name]):
                        del metrics[name]
                if self._many:  # new runs: no old names to keep working
                    for old in DEPRECATED_METRICS:
                        metrics.pop(old, None)
                if self._skipped(metrics, last):
                    continue
                who = int(member[i]) if self._many else None
                self._timed(who, int(step[i]), metrics)
                self.dispatcher.submit(
                    "lerax_on_iteration",
                    step=int(step[i]),
                    metrics=metrics,
                    member=who,
                )
            if self._many and 0 in member and summarised[0] > 0:
                self._aggregate(
                    int(summary_step[0]),
                    summary[0],
                    int(summarised[0]),
                    names,
                    optional,
                    last,
                )

    def _aggregate(
        self,
        step: int,
        summary: np.ndarray,
        summarised: int,
        names: tuple[str, ...],
        optional: tuple[str, ...],
        last: bool,
    ) -> None:
        """Submit the aggregate row: each metric's mean, std, min and max.

        A callback's metric that no member reported this iteration (a NaN
        mean) is left out, as it is from the members' rows.
        """
        means = dict(zip(names, summary[0].tolist(), strict=True))
        metrics = {
            f"{name}{suffix}": value
            for suffix, row in zip(SUMMARY_SUFFIXES, summary.tolist(), strict=True)
            for name, value in zip(names, row, strict=True)
            if name not in DEPRECATED_METRICS
            and not (name in optional and math.isnan(means[name]))
            and (not suffix or name.startswith(SPREAD_PREFIXES))
        }
        if self._skipped(metrics, last):
            return
        self._timed(None, step, metrics)
        if "time/steps_per_second" in metrics:  # every member's steps count
            metrics["time/steps_per_second"] *= summarised
        metrics["members/running"] = float(summarised)
        self.dispatcher.submit(
            "lerax_on_iteration", step=step, metrics=metrics, member=None
        )

    def end(
        self,
        member: np.ndarray,
        step: np.ndarray,
        stop_reason: np.ndarray,
        group_step: np.ndarray,
        group_reason: np.ndarray,
        *,
        running: np.ndarray,
    ) -> None:
        with self._lock:
            if not self._many:
                reason = StopReason(int(stop_reason[0])).label
                self.dispatcher.submit(
                    "lerax_on_training_end", step=int(step[0]), reason=reason
                )
                self._started = False  # the next start is a new run
                if self.close_at_end:
                    self._close_at_end()
                return
            for i in np.flatnonzero(running):
                index = int(member[i])
                self._open.discard(index)
                self.dispatcher.submit(
                    "lerax_on_training_end",
                    step=int(step[i]),
                    reason=StopReason(int(stop_reason[i])).label,
                    member=index,
                )
            if 0 in member:
                self.dispatcher.submit(
                    "lerax_on_training_end",
                    step=int(group_step[0]),
                    reason=StopReason(int(group_reason[0])).label,
                    member=None,
                )
            if not self._open:
                self._started = False  # the next start is a new run
                if self.close_at_end:
                    self._close_at_end()

    def _close_at_end(self) -> None:
        # In `learn` this only starts the close: `learn` waits for it after the
        # loop has returned the policy (see `closes_deferred`).
        close_soon(self.dispatcher)
        host.release(self.handle)

    def close(self) -> None:
        """Deliver pending events, close the backends and release the handle."""
        self.dispatcher.close()
        host.release(self.handle)
