"""`learn` rejects bad arguments with clear messages, before anything compiles.

"Before anything compiles" is checked three ways: the training loop is never
traced (a callback counts its own traces), JAX reports no XLA compilation
during the call, and the call returns quickly.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax.algorithm import PPO
from lerax.callback import AbstractStatelessCallback
from lerax.env import AbstractEnv, Box, Discrete
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

FAST = 2.0  # seconds; a compile of the loop takes several


class ThreeSensorEnv(AbstractEnv):
    """A tiny env whose observations have 3 components instead of CartPole's 4."""

    observation_space: Box = Box(-np.ones(3), np.ones(3))
    action_space: Discrete = Discrete(2)

    def reset(self, *, key):
        obs = jax.random.uniform(key, (3,), minval=-1, maxval=1)
        return obs, obs

    def step(self, state, action, *, key):
        return state, state, jnp.asarray(1.0), jnp.asarray(False), jnp.asarray(False)


class ThreeActionCartPole(CartPole):
    """CartPole's observations, but three actions."""

    @property
    def action_space(self) -> Discrete:
        return Discrete(3)


@pytest.fixture
def policy(env):
    return MLPActorCriticPolicy(env=env, key=jax.random.key(0))


@pytest.fixture
def expect_early_error(
    small_ppo, env, policy, trace_counter, trace_counting_callback, compile_counter
):
    """`expect_early_error(exc, match, **overrides)` calls `learn` and checks it
    raises `exc` matching `match` with no trace, no compile and no delay."""

    def check(exc, match, **overrides):
        arguments = dict(
            env=env,
            policy=policy,
            total_timesteps=4 * small_ppo.steps_per_iteration,
            key=jax.random.key(1),
            callback=trace_counting_callback(trace_counter),
        )
        arguments.update(overrides)
        start = time.perf_counter()
        with compile_counter() as count, pytest.raises(exc, match=match) as info:
            small_ppo.learn(**arguments)
        elapsed = time.perf_counter() - start
        assert trace_counter.count == 0, "the training loop was traced"
        assert count.compiles == 0, f"XLA compiled {count.compiled}"
        assert elapsed < FAST, f"took {elapsed:.2f}s"
        return str(info.value)

    return check


@pytest.mark.parametrize(
    "bad",
    [1024.0, "1024", True, False, np.float64(1024), np.float32(1024), None, [1024]],
    ids=repr,
)
def test_total_timesteps_must_be_an_int(expect_early_error, bad):
    message = expect_early_error(TypeError, "total_timesteps", total_timesteps=bad)
    assert "int" in message
    assert type(bad).__name__ in message


@pytest.mark.parametrize("bad", [0, -1, -10_000], ids=repr)
def test_total_timesteps_must_be_positive(expect_early_error, bad):
    message = expect_early_error(ValueError, "total_timesteps", total_timesteps=bad)
    assert str(bad) in message


def test_total_timesteps_must_cover_one_rollout(expect_early_error, small_ppo):
    too_few = small_ppo.steps_per_iteration - 1
    message = expect_early_error(ValueError, "total_timesteps", total_timesteps=too_few)
    assert str(too_few) in message
    assert str(small_ppo.steps_per_iteration) in message
    assert "num_envs" in message and "num_steps" in message


def test_default_ppo_reports_its_own_rollout_size(env, policy):
    ppo = PPO()
    with pytest.raises(ValueError, match=str(ppo.steps_per_iteration)):
        ppo.learn(env, policy, ppo.steps_per_iteration - 1, key=jax.random.key(0))


@pytest.mark.parametrize(
    "bad",
    [
        0,
        1.5,
        "key",
        jnp.zeros(2, jnp.float32),  # right shape, wrong dtype
        jnp.zeros(3, jnp.uint32),  # legacy key of the wrong length
        jnp.zeros((2, 3), jnp.uint32),  # a batch of legacy keys of the wrong length
        jnp.zeros((2, 2, 2), jnp.uint32),  # a 2-D batch of legacy keys
        jax.random.split(jax.random.key(0), (2, 2)),  # a 2-D batch of typed keys
        jax.random.split(jax.random.key(0), 0),  # no key at all
    ],
    ids=lambda k: f"{type(k).__name__}{getattr(k, 'shape', '')}",
)
def test_key_must_be_a_key_or_a_batch_of_keys(expect_early_error, bad):
    message = expect_early_error(TypeError, "key", key=bad)
    assert "jax.random.key" in message
    if isinstance(bad, jax.Array):
        assert str(bad.shape) in message  # says what was received


def test_policy_for_other_observation_space(expect_early_error):
    other = MLPActorCriticPolicy(env=ThreeSensorEnv(), key=jax.random.key(2))
    message = expect_early_error(ValueError, "observation_space", policy=other)
    assert "CartPole" in message
    assert "another environment" in message


def test_policy_for_other_action_space(expect_early_error, env):
    assert ThreeActionCartPole().observation_space == env.observation_space
    other = MLPActorCriticPolicy(env=ThreeActionCartPole(), key=jax.random.key(3))
    message = expect_early_error(ValueError, "action_space", policy=other)
    assert "Discrete" in message and "another environment" in message


def test_env_and_policy_of_the_wrong_kind(expect_early_error, env):
    expect_early_error(TypeError, "env must be an AbstractEnv", env=type(env))
    expect_early_error(TypeError, "env must be an AbstractEnv", env=None)
    message = expect_early_error(TypeError, "policy must be", policy="policy")
    assert "AbstractPolicy" in message and "str" in message


class Traced(Exception):
    pass


class AbortOnTrace(AbstractStatelessCallback):
    """Raises as soon as the training loop starts tracing."""

    def reset(self, ctx, *, key):
        raise Traced


def test_the_checks_let_valid_variants_through(small_ppo, env, policy):
    """Control: inputs the checks accept reach the traced loop.

    Shows that the errors above come from the checks, and that tracing starts
    by calling the callback's `reset` (what the trace counter relies on).
    """
    for total, key in [
        (small_ppo.steps_per_iteration, jax.random.key(0)),
        (np.int64(small_ppo.steps_per_iteration), jax.random.PRNGKey(0)),
        (np.int32(10**6), jax.random.key(1)),
    ]:
        with pytest.raises(Traced):
            small_ppo.learn(env, policy, total, key=key, callback=AbortOnTrace())


def test_total_timesteps_beyond_the_int32_counter_is_refused_clearly():
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"2\*\*31"):
        PPO().learn(env, policy, 2**31, key=jax.random.key(1))
