"""The contexts passed to callback hooks: a snapshot of the training loop.

Every context carries the environment, the policy, the optimizer state, the latest
training log, the callback's own state and a `locals` dict of further loop values.
They are pytrees, built and consumed inside the jitted loop.
"""

from typing import Any

import equinox as eqx
from equinox import AbstractVar
from jaxtyping import Array, Bool, Float, Int, PyTree

from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractActorCriticPolicy


class AbstractContext(eqx.Module):
    """What every hook sees."""

    env: AbstractVar[AbstractEnv]
    policy: AbstractVar[AbstractActorCriticPolicy]
    opt_state: AbstractVar[PyTree]
    training_log: AbstractVar[dict[str, Float[Array, ""]]]
    state: AbstractVar[PyTree]
    locals: AbstractVar[dict[str, Any]]


class ResetContext(AbstractContext):
    """Passed to `reset` (where `state` is `None`) and to `step_reset`."""

    env: AbstractEnv
    policy: AbstractActorCriticPolicy
    opt_state: PyTree
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
    policy: AbstractActorCriticPolicy
    opt_state: PyTree
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

    `step_state` holds every environment's step state (leading axis: environment).
    `iteration` counts finished iterations; `timestep` counts environment steps.
    """

    env: AbstractEnv
    policy: AbstractActorCriticPolicy
    opt_state: PyTree
    training_log: dict[str, Float[Array, ""]]
    state: PyTree
    locals: dict[str, Any]
    step_state: PyTree
    iteration: Int[Array, ""]
    timestep: Int[Array, ""]


class TrainingContext(AbstractContext):
    """Passed to `on_training_start` and `on_training_end`.

    `algorithm` is the algorithm being run, for its hyper-parameters.
    """

    env: AbstractEnv
    policy: AbstractActorCriticPolicy
    opt_state: PyTree
    training_log: dict[str, Float[Array, ""]]
    state: PyTree
    locals: dict[str, Any]
    algorithm: eqx.Module
    iteration: Int[Array, ""]
    timestep: Int[Array, ""]
    total_timesteps: Int[Array, ""]
