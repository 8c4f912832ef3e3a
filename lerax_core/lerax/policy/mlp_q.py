"""A Q-network policy made of one multilayer perceptron."""

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
from lerax.policy.q_policy import AbstractQPolicy


@final
class MLPQPolicy(AbstractQPolicy):
    """An MLP from the flattened observation to one value per action.

    Sized from an environment's spaces (a `Discrete` action space); ReLU
    hidden layers, orthogonal initialisation.
    """

    observation_space: AbstractSpace
    action_space: AbstractSpace
    q_network: eqx.nn.MLP
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)

    def __init__(
        self, env: AbstractEnv, width: int = 64, depth: int = 2, *, key: Key[Array, ""]
    ):
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.width, self.depth = width, depth
        self.q_network = orthogonal_mlp(
            math.prod(env.observation_space.shape),
            discrete_actions(env.action_space, "MLPQPolicy"),
            width,
            depth,
            1.0,
            activation=jax.nn.relu,
            key=key,
        )

    def q_values(self, observation: Array) -> Float[Array, " actions"]:
        return self.q_network(jnp.ravel(observation))

    def q_values_batch(self, observations: Array) -> Float[Array, "batch actions"]:
        """`jax.vmap(self.q_values)`, computed feature-major (see
        `lerax.policy._mlp.mlp_on_columns`)."""
        x = observations.reshape(observations.shape[0], -1).T
        return mlp_on_columns(self.q_network, x).T
