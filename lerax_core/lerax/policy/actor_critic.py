"""Policies with an action distribution and a value estimate, for policy gradients."""

from abc import abstractmethod

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Key

from lerax.policy._policy import AbstractPolicy
from lerax.policy.distribution import AbstractDistribution


class AbstractActorCriticPolicy(AbstractPolicy):
    """A policy with an action distribution and a state-value estimate per observation.

    What on-policy algorithms (PPO, A2C) train. Works on one observation;
    algorithms `vmap` it over environments and batches.
    """

    @abstractmethod
    def distribution(self, observation: Array) -> AbstractDistribution:
        """The action distribution at `observation`."""

    @abstractmethod
    def value(self, observation: Array) -> Float[Array, ""]:
        """The state-value estimate at `observation`."""

    def __call__(
        self, observation: Array, *, key: Key[Array, ""]
    ) -> tuple[Array, Float[Array, ""], Float[Array, ""]]:
        """Sample an action: return `(action, value, log_prob)`."""
        dist = self.distribution(observation)
        action = dist.sample(key=key)
        return action, self.value(observation), dist.log_prob(action)

    def evaluate(
        self, observation: Array, action: Array
    ) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
        """Score a taken action: return `(value, log_prob, entropy)`."""
        dist = self.distribution(observation)
        return self.value(observation), dist.log_prob(action), dist.entropy()

    def evaluate_batch(
        self, observations: Array, actions: Array
    ) -> tuple[Float[Array, " B"], Float[Array, " B"], Float[Array, " B"]]:
        """`evaluate` over a batch (leading axis): what algorithms' losses call.

        `jax.vmap(self.evaluate)` by default; a policy may override it with an
        equivalent that runs faster on whole batches.
        """
        return jax.vmap(self.evaluate)(observations, actions)

    def predict(
        self, observation: Array, *, key: Key[Array, ""] | None = None
    ) -> Array:
        """The greedy action, or a sampled one when `key` is given."""
        dist = self.distribution(jnp.asarray(observation))
        return dist.mode() if key is None else dist.sample(key=key)
