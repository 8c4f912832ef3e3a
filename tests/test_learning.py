"""PPO with its default hyper-parameters learns CartPole.

One seed runs here to keep the suite fast; `LERAX_LEARNING_SEED=<n>` runs
another (e.g. to check how robust the defaults are across seeds).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax.algorithm import PPO
from lerax.callback import AbstractCallback
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

SEED = int(os.environ.get("LERAX_LEARNING_SEED", "0"))
SOLVED = 475.0
EMA_ALPHA = 0.1

#: Final EMA reported by each run's `on_training_end`.
EMA_REPORTS: list[float] = []


class ReturnEMA(AbstractCallback):
    """EMA (alpha 0.1) of the per-iteration mean return of finished episodes.

    Iterations in which no episode finished leave the EMA unchanged; the first
    iteration with finished episodes initialises it.
    """

    def reset(self, ctx, *, key):
        return jnp.asarray(jnp.nan, jnp.float32)

    def step_reset(self, ctx, *, key):
        return {"return_sum": jnp.zeros(()), "finished": jnp.zeros((), jnp.int32)}

    def on_step(self, ctx, *, key):
        return {
            "return_sum": ctx.state["return_sum"]
            + jnp.where(ctx.done, ctx.episode_return, 0.0),
            "finished": ctx.state["finished"] + ctx.done.astype(jnp.int32),
        }

    def on_iteration(self, ctx, *, key):
        finished = jnp.sum(ctx.step_state["finished"])
        mean = jnp.sum(ctx.step_state["return_sum"]) / jnp.maximum(finished, 1)
        updated = jnp.where(
            jnp.isnan(ctx.state),
            mean,
            (1 - EMA_ALPHA) * ctx.state + EMA_ALPHA * mean,
        )
        return jnp.where(finished > 0, updated, ctx.state)

    def on_training_end(self, ctx, *, key):
        jax.debug.callback(
            lambda ema: EMA_REPORTS.append(float(ema)), ctx.state, ordered=True
        )
        return ctx.state


def initial_policy(env, seed: int) -> MLPActorCriticPolicy:
    """The seed example's recipe: one key, split for the policy and for learning."""
    policy_key, _ = jax.random.split(jax.random.key(seed))
    return MLPActorCriticPolicy(env=env, key=policy_key)


def train(env, total_timesteps: int, seed: int):
    _, learn_key = jax.random.split(jax.random.key(seed))
    EMA_REPORTS.clear()
    trained = PPO().learn(
        env,
        initial_policy(env, seed),
        total_timesteps,
        key=learn_key,
        callback=ReturnEMA(),
    )
    jax.effects_barrier()
    (ema,) = EMA_REPORTS
    return trained, ema


def test_default_ppo_solves_cartpole(env, evaluate):
    eval_key = jax.random.key(1000 + SEED)
    before, _ = evaluate(initial_policy(env, SEED), env, 20, eval_key)
    trained, ema = train(env, 2**17, SEED)
    returns, lengths = evaluate(trained, env, 20, eval_key)
    print(
        f"seed {SEED}: greedy mean {returns.mean():.1f} "
        f"(untrained {before.mean():.1f}), training EMA {ema:.1f}"
    )
    # Random networks sometimes balance the pole by luck: make sure this one
    # did not, so that passing means PPO learned.
    assert before.mean() < SOLVED
    assert returns.shape == (20,)
    np.testing.assert_array_equal(returns, lengths)  # reward 1 per step
    assert returns.mean() >= SOLVED, returns


def test_seed_example_run_reaches_return_ema_150(env):
    _, ema = train(env, 2**16, SEED)
    print(f"seed {SEED}: episode-return EMA after 2**16 steps {ema:.1f}")
    assert ema >= 150.0


class ConstantAction:
    """A 'policy' that always pushes the same way."""

    def __init__(self, action: int):
        self.action = action

    def predict(self, obs):
        return jnp.asarray(self.action, jnp.int32)


def test_evaluation_reports_failing_episodes(env, evaluate):
    """Control for the evaluation helper: always pushing right fails fast."""
    returns, lengths = evaluate(ConstantAction(1), env, 20, jax.random.key(SEED))
    np.testing.assert_array_equal(returns, lengths)
    assert np.all((lengths >= 1) & (lengths < 30))
    assert len(np.unique(lengths)) > 1  # episodes differ by their reset


class Balancer:
    """A hand-written controller that keeps the pole up for 500+ steps."""

    def predict(self, obs):
        return (obs[2] + 0.5 * obs[3] > 0).astype(jnp.int32)


@pytest.mark.parametrize("max_steps", [5, 37])
def test_evaluation_respects_the_time_limit(evaluate, max_steps):
    env = CartPole(max_episode_steps=max_steps)
    returns, lengths = evaluate(Balancer(), env, 4, jax.random.key(0))
    np.testing.assert_array_equal(lengths, max_steps)
    np.testing.assert_array_equal(returns, max_steps)
