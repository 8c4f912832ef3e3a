"""A logging backend that keeps what it receives, to compare real outputs against."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from lerax.plugin.hookspecs import AbstractLoggingBackend


@final
class RecordingBackend(AbstractLoggingBackend):
    """Records every logging event, in order, as plain Python values.

    Put it beside the backend under test in one `LoggingCallback` (or one
    `callback=[...]` list): both receive the same events, so what your backend
    wrote can be read back and compared with `iterations`.

    - `events`: the hook names in call order (`"start"`, `"iteration"`, `"end"`,
      `"close"`);
    - `run_name`, `hyperparameters`: from the latest start;
    - `iterations`: `(step, metrics)` pairs; `ends`: `(step, reason)` pairs.
    """

    def __init__(self) -> None:
        self.events: list[str] = []
        self.run_name: str | None = None
        self.hyperparameters: dict[str, Any] = {}
        self.iterations: list[tuple[int, dict[str, float]]] = []
        self.ends: list[tuple[int, str]] = []

    def lerax_on_training_start(
        self, run_name: str, hyperparameters: Mapping[str, Any]
    ) -> None:
        self.events.append("start")
        self.run_name, self.hyperparameters = run_name, dict(hyperparameters)

    def lerax_on_iteration(self, step: int, metrics: Mapping[str, float]) -> None:
        self.events.append("iteration")
        self.iterations.append((step, dict(metrics)))

    def lerax_on_training_end(self, step: int, reason: str) -> None:
        self.events.append("end")
        self.ends.append((step, reason))

    def lerax_close(self) -> None:
        self.events.append("close")


@dataclass
class RecordedRun:
    """What one run (a member's, or the aggregate) received."""

    run_name: str
    hyperparameters: dict[str, Any]
    group: str | None
    iterations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    ends: list[tuple[int, str]] = field(default_factory=list)


@final
class MemberRecordingBackend(AbstractLoggingBackend):
    """Records every run it receives, members included, as plain Python values.

    It takes the `member` argument, so when `learn` trains many members it
    gets each member's run and the group's aggregate run (`runs[None]`); for a
    single run, `runs[None]` is that run. `events` lists `(hook, member)` in
    call order.
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, int | None]] = []
        self.runs: dict[int | None, RecordedRun] = {}

    def lerax_on_training_start(
        self,
        run_name: str,
        hyperparameters: Mapping[str, Any],
        member: int | None = None,
        group: str | None = None,
    ) -> None:
        self.events.append(("start", member))
        self.runs[member] = RecordedRun(run_name, dict(hyperparameters), group)

    def lerax_on_iteration(
        self, step: int, metrics: Mapping[str, float], member: int | None = None
    ) -> None:
        self.events.append(("iteration", member))
        self.runs[member].iterations.append((step, dict(metrics)))

    def lerax_on_training_end(
        self, step: int, reason: str, member: int | None = None
    ) -> None:
        self.events.append(("end", member))
        self.runs[member].ends.append((step, reason))

    def lerax_close(self) -> None:
        self.events.append(("close", None))
