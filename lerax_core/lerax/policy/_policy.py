"""The actor-critic policy interface the algorithms train."""

from abc import abstractmethod

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Float, Key

from lerax.env.spaces import AbstractSpace
from lerax.policy.distribution import AbstractDistribution


class AbstractActorCriticPolicy(eqx.Module):
    """A policy with an action distribution and a state-value estimate per observation.

    Works on one observation; algorithms `vmap` it over environments and batches.
    It records the spaces it was built for so that training it on another
    environment fails early with a clear message.
    """

    observation_space: AbstractVar[AbstractSpace]
    action_space: AbstractVar[AbstractSpace]

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
