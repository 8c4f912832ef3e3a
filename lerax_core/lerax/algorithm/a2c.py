"""Advantage Actor-Critic: the policy-gradient loss on the on-policy loop."""

from typing import ClassVar, final

from jaxtyping import Array, Float

from lerax.algorithm.on_policy import AbstractOnPolicyAlgorithm, Batch, minibatch_means
from lerax.policy.actor_critic import AbstractActorCriticPolicy


@final
class A2C(AbstractOnPolicyAlgorithm):
    """Advantage Actor-Critic (synchronous, GAE, Adam).

    One gradient step per iteration on the whole rollout (or `num_minibatches`
    steps on parts of it): `-advantage * log_prob`, plus `vf_coef` times the
    value loss, minus `ent_coef` times the entropy. Short rollouts from many
    environments suit it; the defaults solve CartPole (see `benchmarks/`).
    """

    num_envs: int = 16
    """Parallel environments, stepped together with `vmap`."""
    num_steps: int = 8
    """Steps per environment per iteration (the rollout length)."""
    num_epochs: int = 1
    """Passes over each rollout."""
    num_minibatches: int = 1
    """Gradient steps per pass."""
    learning_rate: float = 3e-3
    """Adam's step size (at the start, when annealed)."""
    anneal_learning_rate: bool = True
    """Decay the learning rate linearly to zero over `total_timesteps`."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE's bias-variance trade-off (1 gives plain n-step returns)."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global norm."""
    normalize_advantages: bool = True
    """Standardise advantages within each minibatch."""

    loss_names: ClassVar[tuple[str, ...]] = ("policy_loss", "value_loss", "entropy")

    def __check_init__(self):
        self._check_sizes()

    def loss(
        self, policy: AbstractActorCriticPolicy, batch: Batch
    ) -> tuple[Float[Array, ""], Float[Array, " terms"]]:
        value, log_prob, entropy = policy.evaluate_batch(
            batch.observation, batch.action
        )
        advantage = batch.advantage
        if self.normalize_advantages:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        means = minibatch_means(
            {
                "policy_loss": -advantage * log_prob,
                "value_loss": 0.5 * (value - batch.returns) ** 2,
                "entropy": entropy,
            },
            self.loss_names,
        )
        loss = means[0] + self.vf_coef * means[1] - self.ent_coef * means[2]
        return loss, means
