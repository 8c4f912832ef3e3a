"""The policy interface every algorithm trains: spaces and a greedy action."""

from abc import abstractmethod

import equinox as eqx
from equinox import AbstractVar
from jaxtyping import Array, Key

from lerax.env.spaces import AbstractSpace


class AbstractPolicy(eqx.Module):
    """Maps one observation to an action; algorithms `vmap` it over environments.

    It records the spaces it was built for, so that training or evaluating it
    on another environment fails early with a clear message. What else it
    offers depends on its kind:
    [`AbstractActorCriticPolicy`][lerax.policy.AbstractActorCriticPolicy] for
    policy-gradient algorithms (PPO, A2C),
    [`AbstractQPolicy`][lerax.policy.AbstractQPolicy] for value-based ones (DQN).
    """

    observation_space: AbstractVar[AbstractSpace]
    action_space: AbstractVar[AbstractSpace]

    @abstractmethod
    def predict(
        self, observation: Array, *, key: Key[Array, ""] | None = None
    ) -> Array:
        """The greedy action at `observation`, or a stochastic one when `key` is given."""
