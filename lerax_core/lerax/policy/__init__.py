"""Policies: [`AbstractActorCriticPolicy`][lerax.policy.AbstractActorCriticPolicy] and the MLP one."""

from lerax.policy._policy import AbstractActorCriticPolicy
from lerax.policy.distribution import AbstractDistribution, Categorical
from lerax.policy.mlp_actor_critic import MLPActorCriticPolicy

__all__ = [
    "AbstractActorCriticPolicy",
    "AbstractDistribution",
    "Categorical",
    "MLPActorCriticPolicy",
]
