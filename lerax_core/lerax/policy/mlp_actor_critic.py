"""An actor-critic policy made of two multilayer perceptrons."""

from __future__ import annotations

import math
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Key

from lerax.env._env import AbstractEnv
from lerax.env.spaces import AbstractSpace
from lerax.policy._mlp import discrete_actions, mlp_on_columns, orthogonal_mlp
from lerax.policy.actor_critic import AbstractActorCriticPolicy
from lerax.policy.distribution import AbstractDistribution, Categorical


@final
class MLPActorCriticPolicy(AbstractActorCriticPolicy):
    """Separate actor and critic MLPs sized from an environment's spaces.

    The actor outputs the parameters of the action distribution (logits for a
    `Discrete` action space); the critic outputs a scalar value.
    """

    observation_space: AbstractSpace
    action_space: AbstractSpace
    actor: eqx.nn.MLP
    critic: eqx.nn.MLP
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)

    def __init__(
        self, env: AbstractEnv, width: int = 64, depth: int = 2, *, key: Key[Array, ""]
    ):
        actor_key, critic_key = jax.random.split(key)
        in_size = math.prod(env.observation_space.shape)
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.width, self.depth = width, depth
        self.actor = orthogonal_mlp(
            in_size,
            discrete_actions(env.action_space, "MLPActorCriticPolicy"),
            width,
            depth,
            0.01,
            key=actor_key,
        )
        self.critic = orthogonal_mlp(
            in_size, "scalar", width, depth, 1.0, key=critic_key
        )

    def distribution(self, observation: Array) -> AbstractDistribution:
        return Categorical(self.actor(jnp.ravel(observation)))

    def value(self, observation: Array) -> Float[Array, ""]:
        return self.critic(jnp.ravel(observation))

    def evaluate_batch(
        self, observations: Array, actions: Array
    ) -> tuple[Float[Array, " B"], Float[Array, " B"], Float[Array, " B"]]:
        """`jax.vmap(self.evaluate)`, computed feature-major (see `lerax.policy._mlp.mlp_on_columns`)."""
        x = observations.reshape(observations.shape[0], -1).T
        log_probs = jax.nn.log_softmax(mlp_on_columns(self.actor, x), axis=0)
        values = mlp_on_columns(self.critic, x)
        taken = jnp.arange(log_probs.shape[0])[:, None] == actions.astype(jnp.int32)
        log_prob = jnp.sum(jnp.where(taken, log_probs, 0.0), axis=0)
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=0)
        return values, log_prob, entropy
