"""Save the full training state with orbax-checkpoint, to resume a run after a crash."""

from __future__ import annotations

import atexit
import json
import math
import os
import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Key, PyTree

from lerax import host
from lerax._background import lower_priority
from lerax._hyperparameters import hyperparameters
from lerax.callback._callback import AbstractCallback
from lerax.callback.context import IterationContext, ResetContext, TrainingContext

FORMAT = 2
"""The version of the checkpoint layout, stored in its metadata."""


class CheckpointError(ValueError):
    """A checkpoint directory cannot be resumed from by this `learn` call."""


class CheckpointState(eqx.Module):
    """The host-call token, and the latest value of the `best_by` metric (NaN: none yet)."""

    token: Int[Array, ""]
    metric: Float[Array, ""]


def run_hyperparameters(algorithm: Any, env: Any, policy: Any) -> dict[str, Any]:
    """What a checkpoint records of the run's setup, and a resume must match."""
    return {
        f"{prefix}/{name}": value
        for prefix, part in (("algorithm", algorithm), ("env", env), ("policy", policy))
        for name, value in hyperparameters(part).items()
    }


def _storable(leaf: Array) -> Array:
    """PRNG keys are saved as their raw data."""
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(leaf)
    return leaf


def _arrays(carry: Any) -> list[Array]:
    return [_storable(x) for x in jax.tree.leaves(eqx.filter(carry, eqx.is_array))]


def _layout(leaves: list[Any]) -> list[list[Any]]:
    return [[list(np.shape(x)), str(np.dtype(x.dtype))] for x in leaves]


def _pack(leaves: list[np.ndarray]) -> np.ndarray:
    """The leaves' bytes in one array: orbax's CPU cost is per array written."""
    return np.concatenate(
        [np.ascontiguousarray(leaf).reshape(-1).view(np.uint8) for leaf in leaves]
        or [np.zeros(0, np.uint8)]
    )


def _packed_size(layout: list[list[Any]]) -> int:
    return sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in layout)


def _unpack(packed: np.ndarray, layout: list[list[Any]]) -> list[np.ndarray]:
    buffer, offset, leaves = np.ascontiguousarray(packed).data, 0, []
    for shape, dtype in layout:
        count = math.prod(shape)
        leaf = np.frombuffer(buffer, np.dtype(dtype), count, offset)
        leaves.append(leaf.reshape(shape).copy())
        offset += count * np.dtype(dtype).itemsize
    return leaves


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise OSError(
            error.errno,
            f"CheckpointCallback cannot write checkpoints to {str(directory)!r}: "
            f"{error.strerror or error}. Pass a writable directory.",
        ) from None


_COMPLETE = "_METADATA"
"""The file orbax writes last into a checkpoint's directory."""

_DELETING = ".deleting-"
"""The prefix of a checkpoint being deleted (renamed first, so never half-read)."""


def _orbax() -> Any:
    """Orbax's plain checkpointer: one pytree, one zarr array per leaf.

    Orbax's `CheckpointManager` would also keep the last `keep` and the best,
    but costs twice the CPU per save (composite items, step metadata, a
    directory scan, threads started per save); on two cores that CPU is taken
    from training. The plain checkpointer still writes atomically (into a
    temporary directory, renamed when complete); keeping and pruning are a
    directory listing and a rename here.
    """
    import orbax.checkpoint as ocp

    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler(use_ocdbt=False))


def _steps(directory: Path) -> list[int]:
    """The iterations of the complete checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(
        int(path.name)
        for path in directory.iterdir()
        if path.name.isdigit() and (path / _COMPLETE).is_file()
    )


def _delete(path: Path) -> None:
    """Delete a checkpoint: renamed out of the step names first, so that a crash
    mid-way leaves no damaged checkpoint that looks complete."""
    doomed = path.with_name(f"{_DELETING}{path.name}")
    path.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _clean(directory: Path) -> None:
    """Remove what a crash mid-write or mid-delete left in `directory`."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name.startswith(_DELETING) or ".orbax-checkpoint-tmp" in path.name:
            shutil.rmtree(path, ignore_errors=True)


def _read_meta(orbax: Any, path: Path) -> dict[str, Any]:
    """The metadata of the checkpoint at `path`, without reading its arrays."""
    import orbax.checkpoint as ocp

    args = ocp.args.PyTreeRestore(item={"meta": ""}, partial_restore=True)
    return json.loads(orbax.restore(path, args=args)["meta"])


class Checkpointer:
    """The host side: takes a copy of the carry and writes it on a thread of its own.

    The training thread only hands over the arrays (already copied out by the
    host call); a writer thread, at the lowest CPU priority, saves them in
    order. Up to `QUEUE` checkpoints may wait to be written: only if the disk is
    slower than that does training wait for it. Orbax writes each checkpoint
    into a temporary directory and renames it when complete, so a crash at any
    moment leaves the previous checkpoints intact.
    """

    QUEUE = 2

    def __init__(self, directory: Path, keep: int | None, best_by: str | None):
        self.directory = directory
        self.keep = keep
        self.best_by = best_by
        self.loggers: list[Any] = []  # HostLoggers of the same run, for names and ids
        self.metadata: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.written: list[int] = []
        """The iterations written, in order."""
        self._queue: queue.Queue = queue.Queue(self.QUEUE)
        self._thread: threading.Thread | None = None
        # Imported here, on the caller's thread: importing orbax first on the
        # writer thread, beside other threads compiling code, can break
        # Python 3.11's parser ("AST constructor recursion depth mismatch").
        self._orbax: Any = _orbax()
        self._best: float | None = None  # the best checkpoint's metric, once read
        atexit.register(self.close)

    def start(self, total_timesteps: Any, **metadata: Any) -> None:
        self.metadata = {
            "format": FORMAT,
            "total_timesteps": int(total_timesteps),
            **metadata,
        }

    def save(self, iteration: Any, metric: Any, *leaves: np.ndarray) -> None:
        self._submit(int(iteration), list(leaves), float(metric))

    def end(self, iteration: Any, metric: Any, *leaves: np.ndarray) -> None:
        self._submit(int(iteration), list(leaves), float(metric))
        self.wait()

    def _submit(self, step: int, leaves: list, metric: float) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="lerax-checkpoint", daemon=True
            )
            self._thread.start()
        self._queue.put((step, leaves, metric))

    def wait(self) -> None:
        """Until every handed-over checkpoint is written; report a failure."""
        self._queue.join()
        if self.error is not None:
            from lerax.logging.dispatch import report

            report(
                f"writing a checkpoint to {str(self.directory)!r} failed: "
                f"{type(self.error).__name__}: {self.error}. Training was not "
                f"affected; earlier checkpoints are intact."
            )
            self.error = None

    def _run(self) -> None:
        lower_priority()
        while True:
            step, leaves, metric = self._queue.get()
            try:
                self._write(step, leaves, metric)
            except BaseException as error:  # reported, training goes on
                self.error = error
            finally:
                self._queue.task_done()

    def _write(self, step: int, leaves: list[np.ndarray], metric: float) -> None:
        meta = {
            **self.metadata,
            "iteration": step,
            "metric": None if math.isnan(metric) else metric,
            "layout": _layout(leaves),
            "run_name": next((lg.run_name for lg in self.loggers if lg.run_name), None),
            "run_ids": {
                name: run_id
                for logger in self.loggers
                for name, run_id in logger.run_ids().items()
            },
        }
        item = {"state": _pack(leaves), "meta": json.dumps(meta)}
        if self._orbax is None:  # closed, and used again
            self._orbax = _orbax()
        if not self.written:  # the first write of this run: a crash's leftovers
            _clean(self.directory)
        self._save(self.directory, step, item, self.keep)
        if self.best_by is not None and not math.isnan(metric):
            best = self.directory / "best"
            if self._best is None:  # a resumed run: what the best one holds
                self._best = self._best_so_far(best)
            if metric > self._best:
                self._save(best, step, item, 1)
                self._best = metric
        self.written.append(step)

    def _best_so_far(self, best: Path) -> float:
        """The metric of the checkpoint kept in `best` (-inf: none yet)."""
        _clean(best)
        steps = _steps(best)
        if not steps:
            return -math.inf
        metric = _read_meta(self._orbax, best / str(steps[-1])).get("metric")
        return -math.inf if metric is None else float(metric)

    def _save(self, directory: Path, step: int, item: Any, keep: int | None) -> None:
        """Save `item` as `directory/<step>`, then delete all but the last `keep`."""
        import orbax.checkpoint as ocp

        path = directory / str(step)
        if (path / _COMPLETE).is_file():  # a resumed run's first save repeats
            return
        if path.exists():  # an incomplete directory of that name: not orbax's
            _delete(path)
        self._orbax.save(path, args=ocp.args.PyTreeSave(item))
        if keep is not None:
            for old in _steps(directory)[:-keep]:
                _delete(directory / str(old))

    def close(self) -> None:
        """Write what is pending and release orbax. Idempotent."""
        if self._thread is not None:
            self.wait()
        if self._orbax is not None:
            self._orbax.close()
            self._orbax = None
        atexit.unregister(self.close)


class CheckpointCallback(AbstractCallback):
    """Every `every` iterations, and when training ends, save the full training state.

    The state is the loop's whole carry: the policy, the algorithm's state
    (optimizer state, replay buffer, ...), the parallel environments, every
    callback's state, the counters and PRNG keys; with it, as metadata, the
    algorithm's, env's and policy's hyper-parameters, the run name and the
    trackers' run ids of the logging backends of the same `learn` call.
    `learn(..., resume_from=directory)` continues from the latest.

    Checkpoints are written by orbax-checkpoint into `directory/<iteration>`,
    atomically (a crash mid-write leaves the earlier ones intact), on a thread
    of their own: the training thread only copies the arrays out. The last
    `keep` are kept (`None`: all). With `best_by`, the name of a reported
    metric such as `"eval/return_mean"` (see
    [`EvalCallback`][lerax.callback.EvalCallback]), the checkpoint with the
    best latest value of it is also kept in `directory/best`.

    An unwritable `directory` fails here; a checkpoint that fails to write
    later is reported as a warning and training goes on.
    """

    every: Int[Array, ""]
    handle: Int[Array, ""]
    best_by: str | None = eqx.field(static=True)

    def __init__(
        self,
        directory: str | os.PathLike[str] = "checkpoints",
        *,
        every: int = 32,
        keep: int | None = 3,
        best_by: str | None = None,
    ):
        if not isinstance(directory, str | os.PathLike):
            raise TypeError(f"directory must be a path, got {directory!r}.")
        for name, value in (("every", every), ("keep", keep)):
            if value is None and name == "keep":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}.")
            if value <= 0:
                raise ValueError(
                    f"{name} must be >= 1, got {value}"
                    + (
                        " (iterations between two checkpoints)."
                        if name == "every"
                        else " (checkpoints to keep; None keeps all)."
                    )
                )
        if best_by is not None and not isinstance(best_by, str):
            raise TypeError(f"best_by must be a metric name or None, got {best_by!r}.")
        path = Path(directory).absolute()
        _check_writable(path)
        self.every = jnp.asarray(every, jnp.int32)
        self.best_by = best_by
        self.handle = host.register(Checkpointer(path, keep, best_by))

    @property
    def checkpointer(self) -> Checkpointer:
        """The host side (its `directory`, the iterations `written`)."""
        return host.lookup(self.handle)

    @property
    def directory(self) -> Path:
        """Where the checkpoints are written."""
        return self.checkpointer.directory

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> CheckpointState:
        return CheckpointState(host.new_token(), jnp.asarray(jnp.nan, jnp.float32))

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        return None

    def _metric(self, ctx: Any) -> Float[Array, ""]:
        state: CheckpointState = ctx.state
        if self.best_by is None:
            return state.metric
        if self.best_by not in ctx.reported:
            raise ValueError(
                f"CheckpointCallback(best_by={self.best_by!r}): no callback "
                f"reports that metric; reported: {sorted(ctx.reported) or 'none'} "
                f"(add an EvalCallback for 'eval/return_mean')."
            )
        value = ctx.reported[self.best_by]
        return jnp.where(jnp.isnan(value), state.metric, value)

    def on_training_start(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> CheckpointState:
        settings = run_hyperparameters(ctx.algorithm, ctx.env, ctx.policy)
        token = host.call(
            "start",
            self.handle,
            ctx.total_timesteps,
            after=ctx.state.token,
            hyperparameters=settings,
        )
        return eqx.tree_at(lambda s: s.token, ctx.state, token)

    def on_iteration(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> CheckpointState:
        # The carry at the start of this iteration, ready before the rollout:
        # all iterations up to `carry.iteration` are in it.
        carry = ctx.locals["carry"]
        state: CheckpointState = ctx.state
        metric = self._metric(ctx)
        due = (carry.iteration > 0) & (carry.iteration % self.every == 0)

        def save() -> Int[Array, ""]:
            return host.call(
                "save",
                self.handle,
                carry.iteration,
                metric,  # the carry's: `reported` belongs to the carry's iteration
                *_arrays(carry),
                after=state.token,
            )

        token = jax.lax.cond(due, save, lambda: state.token)
        return CheckpointState(token, metric)

    def on_training_end(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> CheckpointState:
        carry = ctx.locals["carry"]
        state: CheckpointState = ctx.state
        metric = self._metric(ctx)
        token = host.call(
            "end",
            self.handle,
            carry.iteration,
            metric,
            *_arrays(carry),
            after=state.token,
        )
        return CheckpointState(token, metric)

    def close(self) -> None:
        """Wait for pending writes and release orbax (also done at exit)."""
        try:
            checkpointer = self.checkpointer
        except LookupError:
            return
        checkpointer.close()


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """Whether `directory` holds a complete checkpoint to resume from.

    For scripts that resume when they can: `resume_from=directory if
    has_checkpoint(directory) else None`. A checkpoint being written when the
    run was killed is not complete, and does not count.
    """
    try:
        latest_checkpoint(directory)
    except FileNotFoundError:
        return False
    return True


def latest_checkpoint(directory: str | os.PathLike[str]) -> tuple[int, Path]:
    """The latest complete checkpoint in `directory`: `(iteration, path)`.

    Raises `FileNotFoundError` naming the directory when it holds none.
    """
    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"resume_from={str(directory)!r}: no such directory; pass the "
            f"directory a CheckpointCallback wrote to."
        )
    steps = _steps(directory)
    if not steps:
        raise FileNotFoundError(
            f"resume_from={str(directory)!r} holds no complete checkpoint (a "
            f"run killed before its first checkpoint leaves none); start afresh."
        )
    return steps[-1], directory / str(steps[-1])


def read_checkpoint(
    directory: str | os.PathLike[str],
    like: PyTree,
    expected: dict[str, Any],
) -> tuple[PyTree, dict[str, Any]]:
    """Restore the latest checkpoint of `directory` into the arrays of `like`.

    `like` is the loop's carry as `learn` would start it, from
    `eqx.filter_eval_shape` (its `ShapeDtypeStruct`s are what is restored); `expected` the metadata it must agree with (hyper-parameters).
    Returns the restored arrays, structured like `like`, and the metadata.
    Errors name the checkpoint and say what differs.
    """
    _, path = latest_checkpoint(directory)
    dynamic = eqx.filter(like, _is_shape)
    abstract = jax.eval_shape(
        lambda leaves: [_storable(x) for x in leaves], jax.tree.leaves(dynamic)
    )
    orbax = _orbax()
    try:
        meta, restored = _restore(orbax, path, expected, _layout(abstract))
    finally:
        orbax.close()
    leaves = iter(_unpack(restored, meta["layout"]))

    def fill(x: jax.ShapeDtypeStruct) -> Array:
        value = jnp.asarray(next(leaves))
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # its own generator
            return jax.random.wrap_key_data(value, impl=x.dtype._impl)
        return value

    return jax.tree.map(fill, dynamic), meta


def _restore(
    orbax: Any, path: Path, expected: dict[str, Any], layout: list[list[Any]]
) -> tuple[dict[str, Any], np.ndarray]:
    """The metadata and packed arrays of the checkpoint at `path`, checked
    against `expected` and the `layout` of the state to restore into."""
    try:
        meta = _read_meta(orbax, path)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has damaged metadata ({type(error).__name__}: "
            f"{str(error)[:300]}); delete it to resume from the one before."
        ) from None
    _check_agrees(path, meta, expected)
    if meta.get("layout") != layout:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a training state of another shape "
            f"than this learn call's (another policy size, num_envs, callback "
            f"list or algorithm state); resume with the same policy, algorithm "
            f"and callbacks as the run that wrote it."
        )
    try:
        restored = np.asarray(orbax.restore(path)["state"])
        if restored.dtype != np.uint8 or restored.shape != (_packed_size(layout),):
            raise ValueError("its arrays do not match its own layout")
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read (corrupted?): "
            f"{type(error).__name__}: {str(error)[:300]}; delete it to resume "
            f"from the one before."
        ) from None
    return meta, restored


def _is_shape(x: Any) -> bool:
    return isinstance(x, jax.ShapeDtypeStruct)


def _check_agrees(path: Path, meta: dict[str, Any], expected: dict[str, Any]) -> None:
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format {meta.get('format')!r}; this "
            f"Lerax reads format {FORMAT}."
        )
    saved = meta.get("hyperparameters", {})
    wanted = expected["hyperparameters"]
    different = sorted(
        name for name in set(saved) | set(wanted) if saved.get(name) != wanted.get(name)
    )
    if different:
        shown = ", ".join(
            f"{name}: {saved.get(name)!r} there, {wanted.get(name)!r} here"
            for name in different[:4]
        )
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written by another run setup ({shown}"
            f"{', ...' if len(different) > 4 else ''}); resume with the same "
            f"algorithm, env and policy."
        )
    if meta.get("total_timesteps") != expected["total_timesteps"]:
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to a run of total_timesteps="
            f"{meta.get('total_timesteps')}, not {expected['total_timesteps']}: "
            f"ask for the same total (the learning-rate schedule depends on it)."
        )
