"""Generalised advantage estimation over a rollout."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


def generalized_advantages(
    rewards: Float[Array, "T N"],
    values: Float[Array, "T N"],
    dones: Bool[Array, "T N"],
    last_values: Float[Array, " N"],
    *,
    gamma: float,
    gae_lambda: float,
) -> tuple[Float[Array, "T N"], Float[Array, "T N"]]:
    """Return `(advantages, returns)` for a `[time, env]` rollout.

    `dones[t]` marks that the episode ended at step `t`, so nothing is bootstrapped
    across it; truncated episodes are expected to carry their bootstrap value in
    `rewards` already.
    """

    def backward(carry, step):
        next_advantage, next_value = carry
        reward, value, done = step
        not_done = 1.0 - done.astype(value.dtype)
        delta = reward + gamma * next_value * not_done - value
        advantage = delta + gamma * gae_lambda * not_done * next_advantage
        return (advantage, value), advantage

    _, advantages = jax.lax.scan(
        backward,
        (jnp.zeros_like(last_values), last_values),
        (rewards, values, dones),
        reverse=True,
    )
    return advantages, advantages + values
