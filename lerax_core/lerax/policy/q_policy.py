"""Policies that estimate action values, for value-based algorithms such as DQN."""

from abc import abstractmethod

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, Key

from lerax.policy._policy import AbstractPolicy

EXPLORATION_EPSILON = 0.05
"""Probability of a uniformly random action in `predict(..., key=key)`."""


class AbstractQPolicy(AbstractPolicy):
    """A policy that scores every action of a `Discrete` space: `Q(s, a)` for all `a`.

    Acting greedily takes the best-scored action. Works on one observation;
    algorithms `vmap` it, or call `q_values_batch` on whole batches.
    """

    @abstractmethod
    def q_values(self, observation: Array) -> Float[Array, " actions"]:
        """The estimated value of each action at `observation`."""

    def q_values_batch(self, observations: Array) -> Float[Array, "batch actions"]:
        """`q_values` over a batch (leading axis), what losses call.

        `jax.vmap(self.q_values)` by default; a policy may override it with an
        equivalent that runs faster on whole batches.
        """
        return jax.vmap(self.q_values)(observations)

    def predict(
        self, observation: Array, *, key: Key[Array, ""] | None = None
    ) -> Int[Array, ""]:
        """The greedy action; with `key`, a uniformly random one with probability
        `EXPLORATION_EPSILON` (the usual stochastic evaluation of Q policies)."""
        q_values = self.q_values(jnp.asarray(observation))
        greedy = jnp.argmax(q_values)
        if key is None:
            return greedy
        explore_key, action_key = jax.random.split(key)
        random_action = jax.random.randint(action_key, (), 0, q_values.shape[0])
        explore = jax.random.uniform(explore_key) < EXPLORATION_EPSILON
        return jnp.where(explore, random_action, greedy)
