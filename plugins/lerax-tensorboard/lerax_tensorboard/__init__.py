"""Lerax logging backend that writes TensorBoard event files with tensorboardX.

Every metric becomes a scalar plotted against the environment step, and the run's
hyper-parameters are recorded for TensorBoard's HParams and Text dashboards.

Only `lerax` and `lerax.plugin` are imported here: tensorboardX (and with it numpy
and protobuf) is imported when a run starts, so that plugin discovery stays fast.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend

if TYPE_CHECKING:
    from tensorboardX.event_file_writer import EventsWriter

__all__ = ["HYPERPARAMETERS_TAG", "TensorBoardBackend", "directory_name"]

DEFAULT_ROOT = "runs"
"""Without `log_dir`, each run writes to `runs/<run name>` under the working directory."""

HYPERPARAMETERS_TAG = "hyperparameters"
"""Tag (before TensorBoard's `/text_summary` suffix) of the hyper-parameter table."""

_SESSION_START_TAG = "_hparams_/session_start_info"
_SESSION_END_TAG = "_hparams_/session_end_info"
_file_numbers = itertools.count()
_NOT_IN_TAGS = re.compile(r"[^-/\w.]")
_NOT_IN_NAMES = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
MAX_NAME_BYTES = 128
"""Longest run directory name (UTF-8 bytes); longer run names are cut and hashed."""


def directory_name(run_name: str) -> str:
    """`run_name` as one safe directory name under the runs root.

    Path separators, control and Windows-reserved characters become `_`, as do
    leading dots (so `.` and `..` cannot climb out) and trailing dots and spaces;
    a name longer than `MAX_NAME_BYTES` is cut, with a hash of the whole name
    appended so different long names stay apart. Other names are kept as they are.
    """
    name = _NOT_IN_NAMES.sub("_", str(run_name))
    stripped = name.lstrip(".")
    name = "_" * (len(name) - len(stripped)) + stripped
    stripped = name.rstrip(". ")
    name = stripped + "_" * (len(name) - len(stripped))
    if len(name.encode()) > MAX_NAME_BYTES:
        digest = hashlib.sha256(str(run_name).encode()).hexdigest()[:12]
        cut = name.encode()[: MAX_NAME_BYTES - len(digest) - 1]
        name = f"{cut.decode(errors='ignore')}-{digest}"
    return name or "run"


def _tag(name: str) -> str:
    """`name` with the characters TensorBoard does not allow in tags replaced by `_`."""
    return _NOT_IN_TAGS.sub("_", name).lstrip("/")


def _cannot_write(path: Path, error: OSError | str) -> OSError:
    reason = error if isinstance(error, str) else (error.strerror or str(error))
    message = (
        f"TensorBoardBackend cannot write event files to {str(path)!r}: {reason}. "
        f"Pass a log_dir=... in a writable location."
    )
    errno = None if isinstance(error, str) else error.errno
    return OSError(errno, message) if errno else OSError(message)


def _make_writable_directory(path: Path) -> None:
    """Create `path` and prove a file can be written in it, naming it if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise _cannot_write(path, error) from None


def _check_can_create(path: Path) -> None:
    """Check, without creating anything, that `path` could be created as a directory."""
    ancestor = path
    while not ancestor.exists() and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _cannot_write(path, f"{str(ancestor)!r} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _cannot_write(path, f"{str(ancestor)!r} is not writable")


def _hparams_summary(tag: str, **plugin_data: Any) -> Any:
    """A summary carrying `HParamsPluginData(**plugin_data)` for the HParams dashboard."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs

    content = HParamsPluginData(version=0, **plugin_data).SerializeToString()
    metadata = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content)
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def _session_start(hyperparameters: Mapping[str, Any]) -> Any:
    from tensorboardX.proto.plugin_hparams_pb2 import SessionStartInfo  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs

    info = SessionStartInfo(start_time_secs=time.time())
    for name, value in hyperparameters.items():
        if isinstance(value, bool):  # before int: bool is an int subclass
            info.hparams[name].bool_value = value
        elif isinstance(value, int | float):
            info.hparams[name].number_value = float(value)
        else:
            info.hparams[name].string_value = str(value)
    return _hparams_summary(_SESSION_START_TAG, session_start_info=info)


def _session_end(finished: bool) -> Any:
    from tensorboardX.proto.api_pb2 import Status  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs
    from tensorboardX.proto.plugin_hparams_pb2 import SessionEndInfo  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs

    status = Status.Value("STATUS_SUCCESS" if finished else "STATUS_FAILURE")
    info = SessionEndInfo(status=status, end_time_secs=time.time())
    return _hparams_summary(_SESSION_END_TAG, session_end_info=info)


def _markdown_table(hyperparameters: Mapping[str, Any]) -> str:
    rows = [
        f"| {name} | {str(value).replace('|', '&#124;')} |"
        for name, value in sorted(hyperparameters.items())
    ]
    return "\n".join(["| hyper-parameter | value |", "|---|---|", *rows])


class _RunFile:
    """One run's event file: where it is, and what was written to it."""

    def __init__(self, directory: Path, hyperparameters: Mapping[str, Any]):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.summary import text

        _make_writable_directory(directory)
        self.directory = directory
        # tensorboardX's synchronous EventsWriter, not its SummaryWriter: we
        # already run on Lerax's logging thread, and SummaryWriter's own atexit
        # hook would close the file before Lerax's exit hook delivers the
        # events still queued, losing them. The suffix keeps two files opened
        # in the same second apart.
        suffix = f".{os.getpid()}.{next(_file_numbers)}"
        self.writer: EventsWriter | None = EventsWriter(
            str(directory / "events"), suffix
        )
        self.finished, self.step, self.last_flush = False, 0, 0.0
        self.write(_session_start(hyperparameters), step=0)
        self.write(text(HYPERPARAMETERS_TAG, _markdown_table(hyperparameters)), 0)
        self.flush()

    def write(self, summary: Any, step: int) -> None:
        from tensorboardX.proto.event_pb2 import Event  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs

        assert self.writer is not None
        event = Event(wall_time=time.time(), step=int(step), summary=summary)
        self.writer.write_event(event)

    def purge(self, step: int) -> None:
        """Make TensorBoard discard what earlier files of this directory hold
        from `step` on: the rows a crashed run wrote after its checkpoint."""
        from tensorboardX.proto.event_pb2 import Event, SessionLog  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs

        assert self.writer is not None
        start = SessionLog(status=SessionLog.START)
        self.writer.write_event(
            Event(wall_time=time.time(), step=step, session_log=start)
        )
        self.step = step

    def flush(self) -> None:
        assert self.writer is not None
        self.writer.flush()
        self.last_flush = time.monotonic()

    def end(self, step: int, reason: str) -> None:
        # An interrupted run is marked failed; a completed or early-stopped one
        # succeeded. (TensorBoard's HParams has no "aborted" status.)
        self.write(_session_end(finished=reason != "interrupted"), step)
        self.finished = True
        self.flush()

    def close(self) -> None:
        """Mark a run that did not reach training end failed; flush and close."""
        writer = self.writer
        if writer is None:
            return
        try:
            if not self.finished:
                self.write(_session_end(finished=False), self.step)
        finally:
            self.writer = None
            writer.close()


@final
class TensorBoardBackend(AbstractLoggingBackend):
    """Write training metrics and hyper-parameters as TensorBoard event files.

    Each run writes to `log_dir`, or to `runs/<run name>` when `log_dir` is not
    given; view them with `tensorboard --logdir runs`. Every metric is a scalar
    whose step is the environment step (NaN and infinities are kept as such), and
    tags with characters TensorBoard does not allow get them replaced by `_`.
    The hyper-parameters go to the HParams dashboard, which lists the run as
    succeeded once training ends, or failed if it is closed before (an interrupted
    run), and, as a table, to the Text dashboard.

    When `learn` trains many members, the group's directory (`log_dir`, or
    `runs/<group name>`) holds one subdirectory per member (`member-0`, ...)
    and `aggregate`, whose curves are the members' mean with `_std`, `_min`
    and `_max` beside it: TensorBoard draws every member and the mean together.

    Events are written as they arrive and flushed to disk at the end of the first
    iteration `flush_secs` seconds after the previous flush (`0`: after every
    iteration), at training end and at close, so a run stopped with Ctrl-C keeps
    everything logged before it. A `log_dir` that cannot be written fails here,
    before anything is compiled.

    Without `log_dir`, the run name becomes one directory name under `runs/`
    (`directory_name`): separators, `..`, control characters and over-long names
    are made safe, so a run never writes outside `runs/`; pass `log_dir` to
    write elsewhere. Reusing one `log_dir` for several runs puts them in one
    TensorBoard run; leave it unset, or give each run its own, to compare runs.
    """

    def __init__(
        self, log_dir: str | os.PathLike[str] | None = None, *, flush_secs: float = 5.0
    ):
        if isinstance(flush_secs, bool) or not isinstance(flush_secs, int | float):
            raise TypeError(
                f"flush_secs must be a number of seconds, got {flush_secs!r}."
            )
        if not (math.isfinite(flush_secs) and flush_secs >= 0):
            raise ValueError(
                f"flush_secs must be a finite number of seconds >= 0 (0 flushes "
                f"after every iteration), got {flush_secs!r}."
            )
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise TypeError(
                f"log_dir must be a path (str or os.PathLike) or None, got "
                f"{type(log_dir).__name__} {log_dir!r}."
            )
        if log_dir is not None and "://" in os.fspath(log_dir):
            raise ValueError(
                f"log_dir={os.fspath(log_dir)!r} is a URL; TensorBoardBackend writes "
                f"local directories only. Log to a local path and copy it afterwards."
            )
        self.flush_secs = float(flush_secs)
        self._fixed_dir = Path(log_dir).absolute() if log_dir is not None else None
        self._root = Path(DEFAULT_ROOT).absolute()
        if self._fixed_dir is not None:
            _make_writable_directory(self._fixed_dir)
        else:
            _check_can_create(self._root)
        self.log_dir: Path | None = self._fixed_dir
        """The directory of the current (or last) run, or of the group of many
        members' runs; `None` before a default run."""
        self._runs: dict[int | None, _RunFile] = {}
        self._purge_step: int | None = None
        self._lock = threading.Lock()

    def lerax_on_training_start(
        self,
        run_name: str,
        hyperparameters: Mapping[str, Any],
        member: int | None = None,
        group: str | None = None,
    ) -> None:
        with self._lock:
            if member is None:  # a new run or group: the last one is over
                self._close_all()
            if group is None:
                directory = self._fixed_dir or self._run_directory(run_name)
                self.log_dir = directory
            else:
                base = self._fixed_dir or self._run_directory(group)
                self.log_dir = base
                leaf = "aggregate" if member is None else run_name.rpartition("/")[2]
                directory = base / directory_name(leaf)
            run = self._runs[member] = _RunFile(directory, hyperparameters)
            if self._purge_step is not None and group is None:
                run.purge(self._purge_step)  # a resumed run, in its old directory
                self._purge_step = None

    def _run_directory(self, run_name: str) -> Path:
        """`runs/<run name>`, made safe, and never outside the runs root."""
        directory = self._root / directory_name(run_name)
        if directory.parent != self._root or directory.name in ("", ".", ".."):
            raise ValueError(
                f"TensorBoardBackend cannot make a directory for run name "
                f"{run_name!r} inside {str(self._root)!r}; give the run a plain name "
                f"or pass log_dir=... ."
            )
        return directory

    def _open_run(self, member: int | None) -> _RunFile:
        run = self._runs.get(member)
        if run is None or run.writer is None:
            raise RuntimeError(
                "TensorBoardBackend has no open event file: "
                "lerax_on_training_start was not called or failed."
            )
        return run

    def lerax_on_iteration(
        self, step: int, metrics: Mapping[str, float], member: int | None = None
    ) -> None:
        from tensorboardX.proto.summary_pb2 import Summary  # pyright: ignore[reportAttributeAccessIssue]  # protobuf code, no stubs

        with self._lock:
            run = self._open_run(member)
            # Built directly rather than with tensorboardX.summary.scalar, which
            # logs a warning for every NaN (episode means are NaN by design).
            values = [
                Summary.Value(tag=_tag(name), simple_value=float(value))
                for name, value in metrics.items()
            ]
            run.write(Summary(value=values), step)
            run.step = step
            if time.monotonic() - run.last_flush >= self.flush_secs:
                run.flush()

    def lerax_on_training_end(
        self, step: int, reason: str, member: int | None = None
    ) -> None:
        with self._lock:
            run = self._runs.get(member)
            if run is not None and run.writer is not None:
                run.end(step, reason)

    def lerax_on_resume(self, step: int, run_id: str | None) -> None:
        """The next run continues a checkpointed one: in the same directory (the
        run name is the saved one), superseding its rows from `step` on."""
        with self._lock:
            self._purge_step = int(step)

    def lerax_close(self) -> None:
        with self._lock:
            self._close_all()

    def _close_all(self) -> None:
        runs, self._runs = list(self._runs.values()), {}
        errors = []
        for run in runs:
            try:
                run.close()
            except OSError as error:  # close the others all the same
                errors.append(error)
        if errors:
            raise errors[0]


@hookimpl
def lerax_register_backends(register) -> None:
    register(
        "tensorboard",
        TensorBoardBackend,
        "Metrics and hyper-parameters as TensorBoard event files (tensorboardX).",
    )
