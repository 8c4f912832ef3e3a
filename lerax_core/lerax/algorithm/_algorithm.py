"""The algorithm interface: input checks and callback resolution shared by all."""

import numbers
from abc import abstractmethod
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Key

from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractActorCriticPolicy


def _check_key(key: Any) -> Key[Array, ""]:
    """Accept a typed PRNG key (`jax.random.key`) or a legacy `PRNGKey` array."""
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key)
    described = (
        f"an array of dtype {key.dtype} and shape {key.shape}"
        if isinstance(key, jax.Array)
        else repr(key)
    )
    raise TypeError(
        f"key must be a single JAX PRNG key such as jax.random.key(0), got {described}."
    )


def _check_spaces(env: AbstractEnv, policy: AbstractActorCriticPolicy) -> None:
    for which in ("observation_space", "action_space"):
        env_space, policy_space = getattr(env, which), getattr(policy, which)
        if env_space != policy_space:
            raise ValueError(
                f"The policy was built for another environment: its {which} is "
                f"{policy_space} but {type(env).__name__}'s is {env_space}. Build "
                f"the policy from this env, e.g. "
                f"{type(policy).__name__}(env=env, key=key)."
            )


class AbstractAlgorithm(eqx.Module):
    """A training algorithm: `learn` checks its inputs, then runs one jitted loop."""

    @property
    @abstractmethod
    def steps_per_iteration(self) -> int:
        """Environment steps collected per iteration (all parallel envs)."""

    @abstractmethod
    def train(
        self,
        env: AbstractEnv,
        policy: AbstractActorCriticPolicy,
        callback: Any,
        total_timesteps: Array,
        *,
        key: Key[Array, ""],
    ) -> AbstractActorCriticPolicy:
        """The jitted training loop, called by `learn` with checked inputs."""

    def learn(
        self,
        env: AbstractEnv,
        policy: AbstractActorCriticPolicy,
        total_timesteps: int,
        *,
        key: Key[Array, ""],
        callback: Any = None,
    ) -> AbstractActorCriticPolicy:
        """Train `policy` on `env` for `total_timesteps` steps; return the trained policy.

        `callback` is a callback, a logging backend, a registered plugin name
        (`"console"`), a list mixing these, or `None`. Inputs are checked before
        anything compiles. The loop compiles once per set of shapes: calling
        `learn` again with the same kinds of arguments reuses it.

        Ctrl-C ends training within a fraction of a second, at an iteration
        boundary; the callbacks' `on_training_end` runs, then `TrainingInterrupted`
        is raised carrying the policy.
        """
        from lerax.algorithm.interrupt import (
            StopOnInterrupt,
            TrainingInterrupted,
            run_interruptibly,
        )
        from lerax.callback.callback_list import CallbackList
        from lerax.callback.resolve import resolve_callback

        if not isinstance(env, AbstractEnv):
            raise TypeError(f"env must be an AbstractEnv, got {type(env).__name__}.")
        if not isinstance(policy, AbstractActorCriticPolicy):
            raise TypeError(
                f"policy must be an AbstractActorCriticPolicy, got "
                f"{type(policy).__name__}."
            )
        _check_spaces(env, policy)
        if isinstance(total_timesteps, bool) or not isinstance(
            total_timesteps, numbers.Integral
        ):
            raise TypeError(
                f"total_timesteps must be a positive int, got {total_timesteps!r} "
                f"({type(total_timesteps).__name__})."
            )
        if total_timesteps >= 2**31:
            raise ValueError(
                f"total_timesteps={total_timesteps} is too large: the step counter is "
                f"a 32-bit integer, so ask for fewer than 2**31 steps per learn call "
                f"(call learn again with the returned policy to train longer)."
            )
        if total_timesteps < self.steps_per_iteration:
            raise ValueError(
                f"total_timesteps={total_timesteps} is less than one iteration of "
                f"{type(self).__name__} ({self.steps_per_iteration} steps = "
                f"num_envs x num_steps); ask for at least {self.steps_per_iteration}."
            )
        key = _check_key(key)
        callback = CallbackList(
            [
                resolve_callback(callback),
                StopOnInterrupt(self.steps_per_iteration),
            ]
        )
        trained, interrupted = run_interruptibly(
            lambda: self.train(
                env, policy, callback, jnp.asarray(total_timesteps, jnp.int32), key=key
            )
        )
        if interrupted:
            raise TrainingInterrupted(trained)
        return trained
