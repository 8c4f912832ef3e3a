"""A logging backend that keeps what it receives, to compare real outputs against."""

from collections.abc import Mapping
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
