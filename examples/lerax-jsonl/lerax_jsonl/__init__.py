"""A third-party Lerax plugin: one JSON object per line for every logging event.

It uses nothing but Lerax's public plugin interface: the `lerax` entry point in
`pyproject.toml`, the `lerax_register_backends` hook and `AbstractLoggingBackend`.
"""

import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend

MAX_NAME = 200
"""Longest file name made from a run name (file systems allow 255 bytes)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _finite_or_text(value: float) -> float | str:
    """JSON has no NaN or infinity: write those as the strings `"nan"`, `"inf"`."""
    return value if math.isfinite(value) else str(value)


def file_name(run_name: str) -> str:
    """A file name for `run_name` that cannot leave its directory.

    Separators and other unsafe characters become `_`, leading dots are dropped
    (no `..`, no hidden files) and the name is cut to `MAX_NAME` characters.
    """
    name = _UNSAFE.sub("_", str(run_name)).lstrip(".")[:MAX_NAME] or "run"
    return f"{name}.jsonl"


def _cannot_write(path: Path, reason: str) -> OSError:
    return OSError(
        f"JsonlBackend cannot write metrics to {str(path)!r}: {reason}. "
        f"Pass a path=... (or directory=...) in a writable location."
    )


def _check_directory(directory: Path, *, create: bool, target: Path) -> None:
    """Check that files can be written in `directory`, creating it if `create`;
    errors name `target`, the file or directory the user gave."""
    if create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as error:
            raise _cannot_write(target, error.strerror or str(error)) from None
        return
    ancestor = directory
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _cannot_write(target, f"{str(ancestor)!r} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _cannot_write(target, f"{str(ancestor)!r} is not writable")


def _check_file(path: Path) -> None:
    """Check that `path` is, or can become, a regular file to append to."""
    if path.is_dir():
        raise _cannot_write(path, "it is a directory")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):
        raise _cannot_write(path, "it is not a regular file (a device or a pipe)")
    _check_directory(path.parent, create=True, target=path)
    if path.exists():
        try:
            path.open("a", encoding="utf-8").close()
        except OSError as error:
            raise _cannot_write(path, error.strerror or str(error)) from None


class JsonlBackend(AbstractLoggingBackend):
    """Append training events to `path`, or to `directory/<run name>.jsonl`.

    Each line is `{"event": "start" | "iteration" | "end", ...}`; iteration lines
    carry `step` and the `metrics`. When `learn` trains many members, the
    group's runs share one file (named after the group) and every line has a
    `member` field: the member's index, or `null` for the aggregate run. The file is flushed after every line so that
    an interrupted run keeps everything logged so far. Without `path`, the file
    is named after the run, made safe (see `file_name`) so that it stays inside
    `directory` whatever the run name. A path or directory that cannot be
    written fails here, before anything is compiled.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        directory: str | os.PathLike[str] = "runs",
    ):
        if path is not None and not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or a path, or None; got {path!r}.")
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(f"directory must be a str or a path, got {directory!r}.")
        self.path = Path(path) if path is not None else None
        self.directory = Path(directory)
        if self.path is not None:
            _check_file(self.path)
        else:
            _check_directory(self.directory, create=False, target=self.directory)
        self._default_path = path is None
        self._many = False
        self._file: IO[str] | None = None

    def _write(self, record: Mapping[str, Any], member: int | None = None) -> None:
        if self._file is not None:
            if self._many:  # every line of a group says whose it is
                record = {**record, "member": member}
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def lerax_on_training_start(
        self,
        run_name: str,
        hyperparameters: Mapping[str, Any],
        member: int | None = None,
        group: str | None = None,
    ) -> None:
        if member is None:  # a run, or a group of members: one file
            self._many = group is not None
            if self._default_path:
                _check_directory(self.directory, create=True, target=self.directory)
                self.path = self.directory / file_name(run_name)
                self.lerax_close()
            if self._file is None:
                assert self.path is not None
                self._file = self.path.open("a", encoding="utf-8")
        self._write(
            {
                "event": "start",
                "run": run_name,
                "hyperparameters": dict(hyperparameters),
            },
            member,
        )

    def lerax_on_iteration(
        self, step: int, metrics: Mapping[str, float], member: int | None = None
    ) -> None:
        values = {name: _finite_or_text(value) for name, value in metrics.items()}
        self._write({"event": "iteration", "step": step, "metrics": values}, member)

    def lerax_on_training_end(
        self, step: int, reason: str, member: int | None = None
    ) -> None:
        self._write({"event": "end", "step": step, "reason": reason}, member)

    def lerax_close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@hookimpl
def lerax_register_backends(register) -> None:
    register("jsonl", JsonlBackend, "Training metrics as JSON lines, one per event.")
