"""A third-party Lerax plugin: one JSON object per line for every logging event.

It uses nothing but Lerax's public plugin interface: the `lerax` entry point in
`pyproject.toml`, the `lerax_register_backends` hook and `AbstractLoggingBackend`.
"""

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend


def _finite_or_text(value: float) -> float | str:
    """JSON has no NaN or infinity: write those as the strings `"nan"`, `"inf"`."""
    return value if math.isfinite(value) else str(value)


class JsonlBackend(AbstractLoggingBackend):
    """Append training events to `path` (default `runs/<run name>.jsonl`).

    Each line is `{"event": "start" | "iteration" | "end", ...}`; iteration lines
    carry `step` and the `metrics`. The file is flushed after every line so that
    an interrupted run keeps everything logged so far.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise OSError(f"cannot write metrics to {self.path}: {error}") from None
            if not os.access(self.path.parent, os.W_OK):
                raise PermissionError(f"cannot write metrics to {self.path}")
        self._file: IO[str] | None = None

    def _write(self, record: Mapping[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def lerax_on_training_start(
        self, run_name: str, hyperparameters: Mapping[str, Any]
    ) -> None:
        if self.path is None:
            self.path = Path("runs") / f"{run_name}.jsonl"
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._write(
            {
                "event": "start",
                "run": run_name,
                "hyperparameters": dict(hyperparameters),
            }
        )

    def lerax_on_iteration(self, step: int, metrics: Mapping[str, float]) -> None:
        values = {name: _finite_or_text(value) for name, value in metrics.items()}
        self._write({"event": "iteration", "step": step, "metrics": values})

    def lerax_on_training_end(self, step: int, reason: str) -> None:
        self._write({"event": "end", "step": step, "reason": reason})

    def lerax_close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@hookimpl
def lerax_register_backends(register) -> None:
    register("jsonl", JsonlBackend, "Training metrics as JSON lines, one per event.")
