"""Collect a rollout from parallel environments, calling `on_step` per environment."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Key, PyTree

from lerax.callback._callback import AbstractCallback
from lerax.callback.context import StepContext
from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractActorCriticPolicy


class EnvCarry(eqx.Module):
    """What survives between rollouts for every parallel environment."""

    state: PyTree
    observation: Array
    episode_return: Float[Array, " N"]
    episode_length: Int[Array, " N"]


class Transitions(eqx.Module):
    """One rollout, with leading axes `[time, env]`."""

    observation: Array
    action: Array
    log_prob: Float[Array, "T N"]
    value: Float[Array, "T N"]
    reward: Float[Array, "T N"]
    done: Bool[Array, "T N"]


def collect_rollout(
    env: AbstractEnv,
    policy: AbstractActorCriticPolicy,
    callback: AbstractCallback,
    carry: EnvCarry,
    step_state: PyTree,
    hook_fields: dict[str, Any],
    *,
    num_steps: int,
    gamma: float,
    key: Key[Array, ""],
) -> tuple[EnvCarry, PyTree, Transitions]:
    """Run `num_steps` steps of every environment in `carry`.

    Truncated episodes get `gamma * V(final observation)` added to their last
    reward so that time limits do not look like failures. `hook_fields` are the
    loop-level fields of every `StepContext` (env, optimizer state, training log,
    locals).
    """
    num_envs = carry.observation.shape[0]

    def one_env(env_state, obs, ep_return, ep_length, own_step_state, key):
        act_key, env_key, hook_key = jax.random.split(key, 3)
        action, value, log_prob = policy(obs, key=act_key)
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
        transition = Transitions(obs, action, log_prob, value, reward, done)
        return (
            next_state,
            next_obs,
            jnp.where(done, 0.0, ep_return),
            jnp.where(done, 0, ep_length),
            own_step_state,
        ), (transition, truncated, final_obs)

    def step(loop_carry, key):
        env_carry, step_state = loop_carry
        out, transition = jax.vmap(one_env)(
            env_carry.state,
            env_carry.observation,
            env_carry.episode_return,
            env_carry.episode_length,
            step_state,
            jax.random.split(key, num_envs),
        )
        return (EnvCarry(*out[:4]), out[4]), transition

    (carry, step_state), (transitions, truncated, final_obs) = jax.lax.scan(
        step, (carry, step_state), jax.random.split(key, num_steps)
    )
    # Bootstrap truncated episodes after the rollout, in one batched pass of the
    # critic and only when some episode was truncated: the policy does not change
    # during a rollout, so this is the value `V(final observation)` each step would
    # have computed, without a second critic pass per step.
    bootstrap = jax.lax.cond(
        jnp.any(truncated),
        lambda: jnp.where(
            truncated,
            gamma * jax.vmap(jax.vmap(policy.value))(final_obs),
            0.0,
        ).astype(transitions.reward.dtype),
        lambda: jnp.zeros_like(transitions.reward),
    )
    transitions = eqx.tree_at(
        lambda t: t.reward, transitions, transitions.reward + bootstrap
    )
    return carry, step_state, transitions
