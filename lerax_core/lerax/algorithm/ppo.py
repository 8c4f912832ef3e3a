"""Proximal Policy Optimization: a clipped surrogate loss on the on-policy loop."""

from typing import ClassVar, final

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from lerax.algorithm.on_policy import AbstractOnPolicyAlgorithm, Batch, minibatch_means
from lerax.policy.actor_critic import AbstractActorCriticPolicy


@final
class PPO(AbstractOnPolicyAlgorithm):
    """Proximal Policy Optimization (clipped surrogate objective, GAE, Adam).

    Each iteration collects `num_steps` steps from `num_envs` parallel
    environments, then runs `num_epochs` epochs of `num_minibatches` shuffled
    minibatch updates. The defaults solve CartPole in about 10^5 steps, at over
    10^5 steps per second on two CPU cores (see `benchmarks/`).
    """

    num_envs: int = 32
    """Parallel environments, stepped together with `vmap`."""
    num_steps: int = 64
    """Steps per environment per iteration (the rollout length)."""
    num_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 8
    """Shuffled minibatches per epoch."""
    learning_rate: float = 3e-3
    """Adam's step size (at the start, when annealed)."""
    anneal_learning_rate: bool = True
    """Decay the learning rate linearly to zero over `total_timesteps`."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.9
    """GAE's bias-variance trade-off."""
    clip_coef: float = 0.2
    """How far the probability ratio may move from 1 before it is clipped."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global norm."""
    normalize_advantages: bool = True
    """Standardise advantages within each minibatch."""

    loss_names: ClassVar[tuple[str, ...]] = (
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
    )

    def __check_init__(self):
        self._check_sizes()

    def loss(
        self, policy: AbstractActorCriticPolicy, batch: Batch
    ) -> tuple[Float[Array, ""], Float[Array, " terms"]]:
        value, log_prob, entropy = policy.evaluate_batch(
            batch.observation, batch.action
        )
        log_ratio = log_prob - batch.log_prob
        ratio = jnp.exp(log_ratio)
        advantage = batch.advantage
        if self.normalize_advantages:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        clipped = jnp.clip(ratio, 1 - self.clip_coef, 1 + self.clip_coef)
        no_gradient = jax.lax.stop_gradient  # diagnostics, not part of the loss
        means = minibatch_means(
            {
                "policy_loss": -jnp.minimum(ratio * advantage, clipped * advantage),
                "value_loss": 0.5 * (value - batch.returns) ** 2,
                "entropy": entropy,
                "approx_kl": no_gradient((ratio - 1) - log_ratio),
                "clip_fraction": no_gradient(jnp.abs(ratio - 1) > self.clip_coef),
            },
            self.loss_names,
        )
        policy_loss, value_loss, entropy_mean = means[0], means[1], means[2]
        loss = policy_loss + self.vf_coef * value_loss - self.ent_coef * entropy_mean
        return loss, means
