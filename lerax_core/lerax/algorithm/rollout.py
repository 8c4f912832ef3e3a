"""Step parallel environments for one rollout, calling `on_step` per environment."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Key, PyTree

from lerax.callback._callback import AbstractCallback
from lerax.callback.context import StepContext
from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractPolicy

Act = Callable[[Array, Key[Array, ""]], tuple[Array, PyTree]]
"""`act(observation, key) -> (action, extras)` for one environment."""


class EnvCarry(eqx.Module):
    """What survives between rollouts for every parallel environment."""

    state: PyTree
    observation: Array
    episode_return: Float[Array, " N"]
    episode_length: Int[Array, " N"]


class Rollout(eqx.Module):
    """One rollout of every environment: leading axes `[time, env]`.

    `next_observation` is where each step led, the episode's final observation
    when it ended (for bootstrapping truncated episodes and for replay), and
    `last_observation` (`[env]`) is where each environment continues from.
    `extras` is whatever the algorithm's `act` returned besides the action
    (a value and a log-probability for actor-critic algorithms).
    """

    observation: Array
    action: Array
    reward: Float[Array, "T N"]
    terminated: Bool[Array, "T N"]
    truncated: Bool[Array, "T N"]
    next_observation: Array
    extras: PyTree
    last_observation: Array

    @property
    def done(self) -> Bool[Array, "T N"]:
        """The episode ended at this step, by termination or time limit."""
        return self.terminated | self.truncated


def collect_rollout(
    env: AbstractEnv,
    policy: AbstractPolicy,
    act: Act,
    callback: AbstractCallback,
    carry: EnvCarry,
    step_state: PyTree,
    hook_fields: dict[str, Any],
    *,
    num_steps: int,
    key: Key[Array, ""],
) -> tuple[EnvCarry, PyTree, Rollout]:
    """Run `num_steps` steps of every environment in `carry`, acting with `act`.

    `on_step` runs once per environment per step. `hook_fields` are the
    loop-level fields of every `StepContext` (env, algorithm state, training
    log, locals).
    """
    num_envs = carry.observation.shape[0]

    def one_env(env_state, obs, ep_return, ep_length, own_step_state, key):
        act_key, env_key, hook_key = jax.random.split(key, 3)
        action, extras = act(obs, act_key)
        next_state, next_obs, reward, terminated, truncated, final_obs = (
            env.auto_reset_step(env_state, action, key=env_key)
        )
        done = terminated | truncated
        ep_return = ep_return + reward
        ep_length = ep_length + 1
        own_step_state = callback.on_step(
            StepContext(
                policy=policy,
                state=own_step_state,
                observation=obs,
                action=action,
                reward=reward,
                terminated=terminated,
                truncated=truncated,
                done=done,
                episode_return=ep_return,
                episode_length=ep_length,
                **hook_fields,
            ),
            key=hook_key,
        )
        step = (obs, action, reward, terminated, truncated, final_obs, extras)
        carried = (
            next_state,
            next_obs,
            jnp.where(done, 0.0, ep_return),
            jnp.where(done, 0, ep_length),
        )
        return carried, own_step_state, step

    def step(loop_carry, key):
        env_carry, step_state = loop_carry
        carried, step_state, transition = jax.vmap(one_env)(
            env_carry.state,
            env_carry.observation,
            env_carry.episode_return,
            env_carry.episode_length,
            step_state,
            jax.random.split(key, num_envs),
        )
        return (EnvCarry(*carried), step_state), transition

    (carry, step_state), steps = jax.lax.scan(
        step, (carry, step_state), jax.random.split(key, num_steps)
    )
    rollout = Rollout(*steps, last_observation=carry.observation)
    return carry, step_state, rollout
