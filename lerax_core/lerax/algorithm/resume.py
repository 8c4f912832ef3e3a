"""`learn(..., resume_from=...)`: the saved carry to start from, read before compiling."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import equinox as eqx
from jaxtyping import Array, Int, Key

from lerax.callback._callback import AbstractCallback
from lerax.callback.callback_list import CallbackList
from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractPolicy

if TYPE_CHECKING:
    from lerax.algorithm._algorithm import AbstractAlgorithm
    from lerax.algorithm._loop import LoopCarry


def _members(callback: AbstractCallback) -> Iterator[AbstractCallback]:
    """Every callback in `callback`, lists flattened."""
    if isinstance(callback, CallbackList):
        for member in callback.callbacks:
            yield from _members(member)
    else:
        yield callback


def refuse_for_members(callback: AbstractCallback, resume_from: Any) -> None:
    """Checkpoints and resuming are for single runs: say so before compiling."""
    from lerax.callback.checkpoint import CheckpointCallback

    if resume_from is not None:
        raise ValueError(
            "resume_from resumes a single run; it does not support many members "
            "(a batch of keys) yet. Resume each run with its own key."
        )
    if any(isinstance(c, CheckpointCallback) for c in _members(callback)):
        raise ValueError(
            "CheckpointCallback saves a single run; it does not support many "
            "members (a batch of keys) yet. Checkpoint runs one key at a time."
        )


def prepare_run(
    algorithm: AbstractAlgorithm,
    env: AbstractEnv,
    policy: AbstractPolicy,
    callback: AbstractCallback,
    total_timesteps: Int[Array, ""],
    key: Key[Array, ""],
    resume_from: str | os.PathLike[str] | None,
) -> LoopCarry | None:
    """Introduce checkpoints to the loggers of the same run (for the run name and
    tracker ids they save), and, with `resume_from`, read the latest checkpoint
    there: its arrays (the loop's `initial` carry), checked against what this
    call would train, and the saved run name and ids handed to the loggers."""
    from lerax.callback.checkpoint import (
        CheckpointCallback,
        read_checkpoint,
        run_hyperparameters,
    )
    from lerax.logging.callback import LoggingCallback

    members = list(_members(callback))
    loggers = [m.host_logger for m in members if isinstance(m, LoggingCallback)]
    for member in members:
        if isinstance(member, CheckpointCallback):
            member.checkpointer.loggers = loggers
    if resume_from is None:
        return None
    if not isinstance(resume_from, str | os.PathLike):
        raise TypeError(
            f"resume_from must be the directory a CheckpointCallback wrote to, "
            f"got {resume_from!r}."
        )
    from lerax.algorithm._loop import start_loop

    like = eqx.filter_eval_shape(
        start_loop, algorithm, env, policy, callback, total_timesteps, key
    )
    expected: dict[str, Any] = {
        "hyperparameters": run_hyperparameters(algorithm, env, policy),
        "total_timesteps": int(total_timesteps),
    }
    initial, meta = read_checkpoint(resume_from, like, expected)
    for logger in loggers:
        logger.resume = {
            "run_name": meta.get("run_name"),
            "run_ids": meta.get("run_ids") or {},
        }
    return initial
