"""The contexts passed to callback hooks: a snapshot of the training loop.

Every context carries the environment, the policy, the algorithm's state (its
optimizer state, replay buffer, target network, ... as one pytree), the latest
training log, the callback's own state and a `locals` dict of further loop
values. They are pytrees, built and consumed inside the jitted loop, and the
same for every algorithm.
"""

import enum
from typing import Any

import equinox as eqx
from equinox import AbstractVar
from jaxtyping import Array, Bool, Float, Int, PyTree

from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractPolicy


class StopReason(enum.IntEnum):
    """Why training ended, as the loop reports it (`TrainingContext.stop_reason`).

    Backends receive the lowercase name (`"completed"`, ...) in
    `lerax_on_training_end`.
    """

    RUNNING = 0
    """Not ended: the value during training and at `on_training_start`."""
    COMPLETED = 1
    """Every requested iteration ran."""
    STOPPED = 2
    """A callback's `continue_training` returned `False`."""
    INTERRUPTED = 3
    """Ctrl-C or SIGTERM asked `learn` to stop."""
    DIVERGED = 4
    """The policy's parameters became NaN or infinite; the last finite ones are kept."""

    @property
    def label(self) -> str:
        """The name backends receive: `"completed"`, `"stopped"`, ..."""
        return self.name.lower()


class AbstractContext(eqx.Module):
    """What every hook sees."""

    env: AbstractVar[AbstractEnv]
    policy: AbstractVar[AbstractPolicy]
    algorithm_state: AbstractVar[PyTree]
    training_log: AbstractVar[dict[str, Float[Array, ""]]]
    state: AbstractVar[PyTree]
    locals: AbstractVar[dict[str, Any]]

    @property
    def opt_state(self) -> PyTree:
        """The optimizer state, `algorithm_state.opt_state`, or `None` if it has none."""
        return getattr(self.algorithm_state, "opt_state", None)


class ResetContext(AbstractContext):
    """Passed to `reset` (where `state` is `None`) and to `step_reset`."""

    env: AbstractEnv
    policy: AbstractPolicy
    algorithm_state: PyTree
    training_log: dict[str, Float[Array, ""]]
    state: PyTree
    locals: dict[str, Any]


class StepContext(AbstractContext):
    """Passed to `on_step`, once per parallel environment per step.

    `state` is this environment's step state. `episode_return` and
    `episode_length` include this step; when `done` they are the finished
    episode's final values.
    """

    env: AbstractEnv
    policy: AbstractPolicy
    algorithm_state: PyTree
    training_log: dict[str, Float[Array, ""]]
    state: PyTree
    locals: dict[str, Any]
    observation: Array
    action: Array
    reward: Float[Array, ""]
    terminated: Bool[Array, ""]
    truncated: Bool[Array, ""]
    done: Bool[Array, ""]
    episode_return: Float[Array, ""]
    episode_length: Int[Array, ""]


class IterationContext(AbstractContext):
    """Passed to `on_iteration` and `continue_training` after each update.

    `step_state` holds every environment's step state (leading axis:
    environment). `iteration` counts finished iterations; `timestep` counts
    environment steps. In `continue_training`, `state` is what `on_iteration`
    just returned. `member` is which run this is when `learn` trains many at
    once (see [`lerax.members`][]), `0` for a single run. `reported` holds what
    every callback's `metrics` reported at the end of the previous iteration
    (NaN before the first), which is how
    [`LoggingCallback`][lerax.logging.LoggingCallback] sends them with that
    iteration's row.
    """

    env: AbstractEnv
    policy: AbstractPolicy
    algorithm_state: PyTree
    training_log: dict[str, Float[Array, ""]]
    state: PyTree
    locals: dict[str, Any]
    step_state: PyTree
    iteration: Int[Array, ""]
    timestep: Int[Array, ""]
    member: Int[Array, ""]
    reported: dict[str, Float[Array, ""]] = eqx.field(default_factory=dict)


class TrainingContext(AbstractContext):
    """Passed to `on_training_start` and `on_training_end`.

    `algorithm` is the algorithm being run, for its hyper-parameters.
    `stop_reason` is a [`StopReason`][lerax.callback.StopReason] code:
    `RUNNING` at the start, why training ended at the end. `member` is which
    run this is when `learn` trains many at once, `0` for a single run.
    `reported`: the callbacks' `metrics` after the last iteration (see
    `IterationContext`).
    """

    env: AbstractEnv
    policy: AbstractPolicy
    algorithm_state: PyTree
    training_log: dict[str, Float[Array, ""]]
    state: PyTree
    locals: dict[str, Any]
    algorithm: eqx.Module
    iteration: Int[Array, ""]
    timestep: Int[Array, ""]
    total_timesteps: Int[Array, ""]
    stop_reason: Int[Array, ""]
    member: Int[Array, ""]
    reported: dict[str, Float[Array, ""]] = eqx.field(default_factory=dict)
