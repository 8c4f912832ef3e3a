"""Deep Q-Networks: double DQN with a target network and a replay buffer in the jit."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar, final

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, Key, PyTree

from lerax.algorithm._algorithm import AbstractAlgorithm
from lerax.algorithm._members import grid_fields, grid_values
from lerax.algorithm.rollout import Rollout
from lerax.env._env import AbstractEnv
from lerax.env.spaces import Discrete
from lerax.policy._policy import AbstractPolicy
from lerax.policy.q_policy import AbstractQPolicy


class DQNState(eqx.Module):
    """The optimizer state, the target network's parameters, the replay buffer
    (flashbax's state) and the environment steps taken and planned."""

    opt_state: PyTree
    target: PyTree
    buffer: PyTree
    steps: Int[Array, ""]
    total_steps: Int[Array, ""]


class Transition(eqx.Module):
    """One environment step, as stored in the replay buffer."""

    observation: Array
    action: Array
    reward: Float[Array, ""]
    terminated: Array
    next_observation: Array


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@final
class DQN(AbstractAlgorithm[DQNState]):
    """Double DQN: a Q network trained towards a slowly moving target network.

    Each iteration steps `num_envs` environments `num_steps` times with
    epsilon-greedy actions (epsilon falls linearly from `epsilon_start` to
    `epsilon_end` over the first `exploration_fraction` of training; actions are
    uniformly random until `learning_starts` steps are stored), adds the
    transitions to a uniform replay buffer of `buffer_size` that lives in the
    jitted loop (flashbax's item buffer), then takes `num_updates` Adam steps on
    minibatches of `batch_size`, each minimising the squared TD error
    towards `reward + gamma * Q_target(s', a*)`
    with `a*` chosen by the online network (double DQN), and moving the target
    network `tau` of the way towards the online one. Time limits are not
    failures: only terminated episodes stop the bootstrap.

    The training log holds the mean squared TD `loss` and `q_value` of the last
    update (NaN before learning starts), the `epsilon` and the `learning_rate` in use.
    """

    num_envs: int = 10
    """Parallel environments, stepped together with `vmap`."""
    num_steps: int = 4
    """Steps per environment per iteration."""
    num_updates: int = 20
    """Gradient steps per iteration."""
    batch_size: int = 256
    """Transitions per gradient step, sampled uniformly from the buffer."""
    buffer_size: int = 50_000
    """Transitions kept; the oldest go first."""
    learning_starts: int = 5_000
    """Transitions stored, acting uniformly at random, before the first update."""
    learning_rate: float = 1e-3
    """Adam's step size at the start."""
    anneal_learning_rate: bool = True
    """Decay the step size linearly to zero over training, which keeps the
    final greedy policy from forgetting what it learned."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Fraction of the way the target network moves towards the online one after
    each gradient step (1 copies it)."""
    epsilon_start: float = 1.0
    """Probability of a random action at the start of exploration."""
    epsilon_end: float = 0.05
    """Probability of a random action once exploration has decayed."""
    exploration_fraction: float = 0.5
    """Fraction of training over which epsilon decays linearly."""
    max_grad_norm: float = 10.0
    """Gradients are clipped to this global norm."""

    training_log_names: ClassVar[tuple[str, ...]] = (
        "loss",
        "q_value",
        "epsilon",
        "learning_rate",
    )

    def __check_init__(self):
        grid_fields(self)  # only float hyper-parameters may vary across members
        for field in ("num_envs", "num_steps", "num_updates", "batch_size",
                      "buffer_size"):  # fmt: skip
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DQN.{field} must be an int >= 1, got {value!r}.")
        if self.buffer_size < self.batch_size:
            raise ValueError(
                f"DQN.buffer_size ({self.buffer_size}) must hold at least one "
                f"batch (batch_size={self.batch_size})."
            )
        if not (isinstance(self.learning_starts, int) and self.learning_starts >= 0):
            raise ValueError(
                f"DQN.learning_starts must be an int >= 0, got "
                f"{self.learning_starts!r}."
            )
        # A float given as a sequence (one value per member) is checked value by value.
        for field in ("epsilon_start", "epsilon_end", "exploration_fraction",
                      "gamma"):  # fmt: skip
            for value in grid_values(getattr(self, field)):
                if not (_number(value) and 0 <= value <= 1):
                    raise ValueError(f"DQN.{field} must be in [0, 1], got {value!r}.")
        for value in grid_values(self.tau):
            if not (_number(value) and 0 < value <= 1):
                raise ValueError(f"DQN.tau must be in (0, 1], got {value!r}.")
        for field in ("learning_rate", "max_grad_norm"):
            for value in grid_values(getattr(self, field)):
                if not (_number(value) and value > 0):
                    raise ValueError(f"DQN.{field} must be > 0, got {value!r}.")

    def check(self, env: AbstractEnv, policy: AbstractPolicy) -> None:
        if not isinstance(env.action_space, Discrete):
            raise TypeError(
                f"DQN needs a Discrete action space (one Q value per action); "
                f"{type(env).__name__}'s is {type(env.action_space).__name__}. "
                f"Use PPO or A2C for other action spaces."
            )
        if not isinstance(policy, AbstractQPolicy):
            raise TypeError(
                f"DQN trains a Q policy (AbstractQPolicy, such as MLPQPolicy), got "
                f"{type(policy).__name__}."
            )

    def _optimizer(self) -> optax.GradientTransformation:
        return optax.chain(
            optax.clip_by_global_norm(self.max_grad_norm),
            optax.scale_by_adam(),
            optax.scale(-1.0),  # times the learning rate of the iteration
        )

    def _learning_rate(self, state: DQNState) -> Float[Array, ""]:
        if not self.anneal_learning_rate:
            return jnp.asarray(self.learning_rate, jnp.float32)
        remaining = 1.0 - state.steps / jnp.maximum(state.total_steps, 1)
        return self.learning_rate * jnp.clip(remaining, 0.0, 1.0)

    def _buffer(self) -> Any:
        import flashbax

        return flashbax.make_item_buffer(
            max_length=self.buffer_size,
            min_length=max(self.batch_size, self.learning_starts),
            sample_batch_size=self.batch_size,
            add_batches=True,
        )

    def _epsilon(self, state: DQNState) -> Float[Array, ""]:
        decay_steps = jnp.maximum(self.exploration_fraction * state.total_steps, 1.0)
        progress = jnp.clip(state.steps / decay_steps, 0.0, 1.0)
        epsilon = self.epsilon_start + progress * (
            self.epsilon_end - self.epsilon_start
        )
        return jnp.where(state.steps < self.learning_starts, 1.0, epsilon)

    def init(
        self,
        env: AbstractEnv,
        policy: AbstractPolicy,
        num_iterations: Int[Array, ""],
        *,
        key: Key[Array, ""],
    ) -> DQNState:
        params = eqx.filter(policy, eqx.is_inexact_array)
        observation = jnp.zeros(env.observation_space.shape, jnp.float32)
        example = Transition(
            observation,
            jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.float32),
            jnp.zeros((), bool),
            observation,
        )
        return DQNState(
            opt_state=self._optimizer().init(params),
            target=params,
            buffer=self._buffer().init(example),
            steps=jnp.asarray(0, jnp.int32),
            total_steps=(num_iterations * self.steps_per_iteration).astype(jnp.int32),
        )

    def act(
        self,
        policy: AbstractPolicy,
        state: DQNState,
        observation: Array,
        *,
        key: Key[Array, ""],
    ) -> tuple[Array, None]:
        assert isinstance(policy, AbstractQPolicy)
        explore_key, action_key = jax.random.split(key)
        q_values = policy.q_values(observation)
        random_action = jax.random.randint(action_key, (), 0, q_values.shape[0])
        explore = jax.random.uniform(explore_key) < self._epsilon(state)
        return jnp.where(explore, random_action, jnp.argmax(q_values)), None

    def _loss(
        self, policy: AbstractQPolicy, target: AbstractQPolicy, batch: Transition
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """The squared TD error towards the double-DQN target, and the mean Q value."""
        next_online = policy.q_values_batch(batch.next_observation)
        next_target = target.q_values_batch(batch.next_observation)
        best = jnp.argmax(jax.lax.stop_gradient(next_online), axis=1)
        next_value = jnp.take_along_axis(next_target, best[:, None], axis=1)[:, 0]
        bootstrap = jnp.where(batch.terminated, 0.0, self.gamma * next_value)
        td_target = jax.lax.stop_gradient(batch.reward + bootstrap)
        q_values = policy.q_values_batch(batch.observation)
        taken = jnp.take_along_axis(
            q_values, batch.action.astype(jnp.int32)[:, None], axis=1
        )[:, 0]
        return optax.l2_loss(taken, td_target).mean(), taken.mean()

    def update(
        self,
        policy: AbstractPolicy,
        state: DQNState,
        rollout: Rollout,
        *,
        key: Key[Array, ""],
    ) -> tuple[AbstractPolicy, DQNState, dict[str, Float[Array, ""]]]:
        assert isinstance(policy, AbstractQPolicy)
        buffer = self._buffer()
        flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
        transitions = Transition(
            flat(rollout.observation).astype(jnp.float32),
            flat(rollout.action).astype(jnp.int32),
            flat(rollout.reward).astype(jnp.float32),
            flat(rollout.terminated),
            flat(rollout.next_observation).astype(jnp.float32),
        )
        epsilon = self._epsilon(state)
        learning_rate = self._learning_rate(state)
        stored = buffer.add(state.buffer, transitions)
        optimizer = self._optimizer()
        params, static = eqx.partition(policy, eqx.is_array)
        grad_fn = eqx.filter_value_and_grad(self._loss, has_aux=True)

        def gradient_step(carry, key):
            params, opt_state, target = carry
            current = eqx.combine(params, static)
            batch = buffer.sample(stored, key).experience
            (loss, q_value), grads = grad_fn(
                current, eqx.combine(target, params, static), batch
            )
            updates, opt_state = optimizer.update(
                grads, opt_state, eqx.filter(current, eqx.is_inexact_array)
            )
            updates = jax.tree.map(lambda u: u * learning_rate, updates)
            params = eqx.apply_updates(params, updates)
            target = optax.incremental_update(
                eqx.filter(params, eqx.is_inexact_array), target, self.tau
            )
            return (params, opt_state, target), (loss, q_value)

        def learn(carry):
            carry, (loss, q_value) = jax.lax.scan(
                gradient_step, carry, jax.random.split(key, self.num_updates)
            )
            return carry, loss[-1], q_value[-1]

        def wait(carry):
            return carry, jnp.asarray(jnp.nan), jnp.asarray(jnp.nan)

        steps = state.steps + self.steps_per_iteration
        (params, opt_state, target), loss, q_value = jax.lax.cond(
            steps >= jnp.maximum(self.learning_starts, self.batch_size),
            learn,
            wait,
            (params, state.opt_state, state.target),
        )
        new_state = DQNState(opt_state, target, stored, steps, state.total_steps)
        log = {
            "loss": loss,
            "q_value": q_value,
            "epsilon": epsilon,
            "learning_rate": learning_rate,
        }
        return eqx.combine(params, static), new_state, log
