"""An actor-critic policy made of two multilayer perceptrons."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Key

from lerax.env._env import AbstractEnv
from lerax.env.spaces import AbstractSpace, Discrete
from lerax.policy._policy import AbstractActorCriticPolicy
from lerax.policy.distribution import AbstractDistribution, Categorical


def _orthogonal_mlp(
    in_size: int, out_size: int, width: int, depth: int, out_scale: float, *, key
) -> eqx.nn.MLP:
    """An MLP with orthogonal weights and zero biases, the usual PPO initialisation."""
    mlp = eqx.nn.MLP(in_size, out_size, width, depth, activation=jnp.tanh, key=key)
    keys = jax.random.split(key, len(mlp.layers))
    init = jax.nn.initializers.orthogonal
    layers = []
    for i, (layer, k) in enumerate(zip(mlp.layers, keys, strict=True)):
        scale = out_scale if i == len(mlp.layers) - 1 else math.sqrt(2)
        weight = init(scale)(k, layer.weight.shape)
        layer = eqx.tree_at(lambda lin: lin.weight, layer, weight)
        layer = eqx.tree_at(lambda lin: lin.bias, layer, jnp.zeros_like(layer.bias))
        layers.append(layer)
    return eqx.tree_at(lambda m: m.layers, mlp, tuple(layers))


def _action_size(space: AbstractSpace) -> int:
    if isinstance(space, Discrete):
        return space.n
    raise TypeError(
        f"MLPActorCriticPolicy supports Discrete action spaces, got "
        f"{type(space).__name__}; a Gaussian head for Box actions is not built yet."
    )


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
        self.actor = _orthogonal_mlp(
            in_size, _action_size(env.action_space), width, depth, 0.01, key=actor_key
        )
        self.critic = _orthogonal_mlp(
            in_size, "scalar", width, depth, 1.0, key=critic_key
        )

    def distribution(self, observation: Array) -> AbstractDistribution:
        return Categorical(self.actor(jnp.ravel(observation)))

    def value(self, observation: Array) -> Float[Array, ""]:
        return self.critic(jnp.ravel(observation))
