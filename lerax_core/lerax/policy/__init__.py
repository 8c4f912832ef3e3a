"""Policies: the [`AbstractPolicy`][lerax.policy.AbstractPolicy] interface and its kinds.

[`AbstractActorCriticPolicy`][lerax.policy.AbstractActorCriticPolicy] (an action
distribution and a value, for PPO and A2C) and
[`AbstractQPolicy`][lerax.policy.AbstractQPolicy] (action values, for DQN), with
an MLP of each kind.
"""

from lerax.policy._policy import AbstractPolicy
from lerax.policy.actor_critic import AbstractActorCriticPolicy
from lerax.policy.distribution import AbstractDistribution, Categorical
from lerax.policy.mlp_actor_critic import MLPActorCriticPolicy
from lerax.policy.mlp_q import MLPQPolicy
from lerax.policy.q_policy import AbstractQPolicy

__all__ = [
    "AbstractActorCriticPolicy",
    "AbstractDistribution",
    "AbstractPolicy",
    "AbstractQPolicy",
    "Categorical",
    "MLPActorCriticPolicy",
    "MLPQPolicy",
]
