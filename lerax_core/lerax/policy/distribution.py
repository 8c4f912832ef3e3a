"""Action distributions produced by a policy's actor head."""

from __future__ import annotations

from abc import abstractmethod

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, Key


class AbstractDistribution(eqx.Module):
    """A distribution over one action, with what policy-gradient losses need."""

    @abstractmethod
    def sample(self, *, key: Key[Array, ""]) -> Array:
        """Draw an action."""

    @abstractmethod
    def log_prob(self, action: Array) -> Float[Array, ""]:
        """Log-probability (or density) of `action`."""

    @abstractmethod
    def entropy(self) -> Float[Array, ""]:
        """Entropy of the distribution."""

    @abstractmethod
    def mode(self) -> Array:
        """The most likely action, for greedy evaluation."""


class Categorical(AbstractDistribution):
    """A distribution over `0, ..., n - 1` parameterised by unnormalised logits."""

    logits: Float[Array, " n"]

    def __init__(self, logits: Float[Array, " n"]):
        self.logits = jax.nn.log_softmax(logits)

    def sample(self, *, key: Key[Array, ""]) -> Int[Array, ""]:
        return jax.random.categorical(key, self.logits)

    def log_prob(self, action: Int[Array, ""]) -> Float[Array, ""]:
        return jnp.take(self.logits, action.astype(jnp.int32))

    def entropy(self) -> Float[Array, ""]:
        return -jnp.sum(jnp.exp(self.logits) * self.logits)

    def mode(self) -> Int[Array, ""]:
        return jnp.argmax(self.logits)
