"""CartPole against Gymnasium's CartPole-v1, auto-reset, batching and spaces."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax.env import Box, Discrete
from lerax.env.classic_control import CartPole, CartPoleState

# Gymnasium CartPole-v1 constants (gymnasium/envs/classic_control/cartpole.py).
GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSPOLE + MASSCART
LENGTH = 0.5  # actually half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
MAX_EPISODE_STEPS = 500


def reference_step(obs: np.ndarray, action: int) -> tuple[np.ndarray, bool]:
    """Gymnasium CartPole-v1 `step` (euler integrator) in float64 numpy."""
    x, x_dot, theta, theta_dot = (float(v) for v in obs)
    force = FORCE_MAG if action == 1 else -FORCE_MAG
    costheta, sintheta = math.cos(theta), math.sin(theta)
    temp = (force + POLEMASS_LENGTH * theta_dot**2 * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * costheta**2 / TOTAL_MASS)
    )
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    x = x + TAU * x_dot
    x_dot = x_dot + TAU * xacc
    theta = theta + TAU * theta_dot
    theta_dot = theta_dot + TAU * thetaacc
    terminated = (
        x < -X_THRESHOLD
        or x > X_THRESHOLD
        or theta < -THETA_THRESHOLD
        or theta > THETA_THRESHOLD
    )
    return np.array([x, x_dot, theta, theta_dot]), terminated


def near_threshold(obs: np.ndarray, tol: float = 1e-4) -> bool:
    """Whether float32 rounding could flip the termination flag."""
    return (
        abs(abs(obs[0]) - X_THRESHOLD) < tol or abs(abs(obs[2]) - THETA_THRESHOLD) < tol
    )


def make_state(x, x_dot, theta, theta_dot, time=0) -> CartPoleState:
    f = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    return CartPoleState(f(x), f(x_dot), f(theta), f(theta_dot), jnp.asarray(time))


STEP_KEY = jax.random.key(0)


def test_single_steps_match_gymnasium_from_random_states(env):
    rng = np.random.default_rng(0)
    n = 400
    obs = np.stack(
        [
            rng.uniform(-2.4, 2.4, n),
            rng.uniform(-3.0, 3.0, n),
            rng.uniform(-0.21, 0.21, n),
            rng.uniform(-3.0, 3.0, n),
        ],
        axis=1,
    ).astype(np.float32)
    actions = rng.integers(0, 2, n)
    states = jax.vmap(make_state)(*obs.T)
    step = jax.jit(jax.vmap(lambda s, a: env.step(s, a, key=STEP_KEY)))
    _, next_obs, reward, terminated, truncated = step(states, jnp.asarray(actions))

    expected = [reference_step(o, a) for o, a in zip(obs, actions, strict=True)]
    expected_obs = np.stack([e[0] for e in expected])
    expected_term = np.array([e[1] for e in expected])
    np.testing.assert_allclose(np.asarray(next_obs), expected_obs, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(reward), np.ones(n))
    assert not np.asarray(truncated).any()
    clear = np.array([not near_threshold(o) for o in expected_obs])
    np.testing.assert_array_equal(np.asarray(terminated)[clear], expected_term[clear])
    # The sample must exercise both outcomes for the comparison to mean anything.
    assert expected_term[clear].any() and not expected_term[clear].all()


def test_random_trajectory_matches_gymnasium(env):
    """A few hundred auto-reset steps with random actions, step by step."""
    num_steps = 400
    rng = np.random.default_rng(1)
    actions = jnp.asarray(rng.integers(0, 2, num_steps))
    state, obs = env.reset(key=jax.random.key(1))

    def body(carry, inputs):
        state, obs = carry
        action, key = inputs
        state, next_obs, reward, term, trunc, final_obs = env.auto_reset_step(
            state, action, key=key
        )
        return (state, next_obs), (obs, reward, term, trunc, final_obs, state.time)

    keys = jax.random.split(jax.random.key(2), num_steps)
    _, (prev_obs, reward, term, trunc, final_obs, time) = jax.jit(
        lambda s, o: jax.lax.scan(body, (s, o), (actions, keys))
    )(state, obs)
    prev_obs, final_obs = np.asarray(prev_obs), np.asarray(final_obs)
    term, trunc = np.asarray(term), np.asarray(trunc)

    episode_step = 0
    for t in range(num_steps):
        expected_obs, expected_term = reference_step(prev_obs[t], int(actions[t]))
        np.testing.assert_allclose(final_obs[t], expected_obs, rtol=1e-5, atol=1e-5)
        if not near_threshold(expected_obs):
            assert term[t] == expected_term, t
        assert reward[t] == 1.0
        assert not trunc[t]  # random play never lasts 500 steps
        episode_step = 0 if term[t] else episode_step + 1
        assert time[t] == episode_step
        if t + 1 < num_steps and not term[t]:
            # The next step starts from where this one ended.
            np.testing.assert_array_equal(prev_obs[t + 1], final_obs[t])
    assert term.sum() >= 5  # several episodes ended and were reset


def test_reset_distribution(env):
    states, obs = jax.vmap(lambda k: env.reset(key=k))(
        jax.random.split(jax.random.key(3), 256)
    )
    obs = np.asarray(obs)
    assert obs.shape == (256, 4)
    assert np.all(np.abs(obs) <= 0.05)
    assert np.all(np.asarray(states.time) == 0)
    assert obs.std(axis=0).min() > 0.01  # actually random, per component
    np.testing.assert_array_equal(
        obs, np.asarray(jax.vmap(lambda s: s.observation())(states))
    )


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ((2.39, 1.0, 0.0, 0.0), 1),  # cart leaves on the right
        ((-2.39, -1.0, 0.0, 0.0), 0),  # cart leaves on the left
        ((0.0, 0.0, THETA_THRESHOLD - 1e-3, 1.0), 1),  # pole falls right
        ((0.0, 0.0, -THETA_THRESHOLD + 1e-3, -1.0), 0),  # pole falls left
    ],
)
def test_terminates_outside_thresholds(env, state, action):
    expected_obs, expected_term = reference_step(np.array(state), action)
    assert expected_term
    _, obs, reward, terminated, truncated = env.step(
        make_state(*state, time=10), jnp.asarray(action), key=STEP_KEY
    )
    assert bool(terminated)
    assert not bool(truncated)
    assert float(reward) == 1.0
    np.testing.assert_allclose(np.asarray(obs), expected_obs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "state",
    [
        (2.3, 1.0, 0.0, 0.0),
        (-2.3, -1.0, 0.0, 0.0),
        (0.0, 0.0, THETA_THRESHOLD - 0.03, 1.0),
        (0.0, 0.0, -THETA_THRESHOLD + 0.03, -1.0),
    ],
)
def test_does_not_terminate_inside_thresholds(env, state):
    _, terminated = reference_step(np.array(state), 1)
    assert not terminated
    _, _, _, terminated, truncated = env.step(
        make_state(*state), jnp.asarray(1), key=STEP_KEY
    )
    assert not bool(terminated) and not bool(truncated)


def test_truncates_after_500_steps(env):
    """A balancing controller survives; the time limit ends the episode at 500."""
    state, _ = env.reset(key=jax.random.key(4))

    def body(state, _):
        obs = state.observation()
        action = (obs[2] + 0.5 * obs[3] > 0).astype(jnp.int32)
        state, _, _, terminated, truncated = env.step(state, action, key=STEP_KEY)
        return state, (terminated, truncated, state.time)

    _, (terminated, truncated, time) = jax.jit(
        lambda s: jax.lax.scan(body, s, None, length=MAX_EPISODE_STEPS + 5)
    )(state)
    terminated, truncated = np.asarray(terminated), np.asarray(truncated)
    assert not terminated[:MAX_EPISODE_STEPS].any()
    assert np.flatnonzero(truncated)[0] == MAX_EPISODE_STEPS - 1
    assert time[MAX_EPISODE_STEPS - 1] == MAX_EPISODE_STEPS


def test_truncation_boundary(env):
    calm = (0.0, 0.0, 0.0, 0.0)
    *_, terminated, truncated = env.step(
        make_state(*calm, time=MAX_EPISODE_STEPS - 2), jnp.asarray(0), key=STEP_KEY
    )
    assert not bool(truncated) and not bool(terminated)
    *_, terminated, truncated = env.step(
        make_state(*calm, time=MAX_EPISODE_STEPS - 1), jnp.asarray(0), key=STEP_KEY
    )
    assert bool(truncated) and not bool(terminated)


def test_auto_reset_step_resets_on_done_and_returns_final_observation(env):
    state = make_state(2.39, 1.0, 0.0, 0.0, time=7)
    action = jnp.asarray(1)
    key = jax.random.key(5)
    _, step_obs, _, step_term, _ = env.step(state, action, key=key)
    assert bool(step_term)

    new_state, obs, reward, terminated, truncated, final_obs = env.auto_reset_step(
        state, action, key=key
    )
    assert bool(terminated) and not bool(truncated)
    assert float(reward) == 1.0
    # The final observation is the terminal one, the observation a fresh one.
    np.testing.assert_array_equal(np.asarray(final_obs), np.asarray(step_obs))
    assert int(new_state.time) == 0
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(new_state.observation()))
    assert np.all(np.abs(np.asarray(obs)) <= 0.05)
    assert not np.allclose(np.asarray(obs), np.asarray(final_obs))

    # Truncation resets too.
    state = make_state(0.0, 0.0, 0.0, 0.0, time=MAX_EPISODE_STEPS - 1)
    new_state, obs, _, terminated, truncated, final_obs = env.auto_reset_step(
        state, action, key=key
    )
    assert bool(truncated) and not bool(terminated)
    assert int(new_state.time) == 0
    assert np.all(np.abs(np.asarray(obs)) <= 0.05)
    _, step_obs, *_ = env.step(state, action, key=key)
    np.testing.assert_array_equal(np.asarray(final_obs), np.asarray(step_obs))


def test_auto_reset_step_passes_through_when_not_done(env):
    state = make_state(0.1, 0.2, 0.01, -0.1, time=3)
    action = jnp.asarray(0)
    key = jax.random.key(6)
    step_state, step_obs, step_reward, *_ = env.step(state, action, key=key)
    new_state, obs, reward, terminated, truncated, final_obs = env.auto_reset_step(
        state, action, key=key
    )
    assert not bool(terminated) and not bool(truncated)
    assert int(new_state.time) == 4
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(step_obs))
    np.testing.assert_array_equal(np.asarray(final_obs), np.asarray(step_obs))
    for a, b in zip(
        jax.tree.leaves(new_state), jax.tree.leaves(step_state), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(reward) == float(step_reward)


def test_vmap_batching_matches_single_env(env):
    n = 16
    keys = jax.random.split(jax.random.key(7), n)
    states, obs = jax.vmap(lambda k: env.reset(key=k))(keys)
    for i in range(n):
        _, single_obs = env.reset(key=keys[i])
        np.testing.assert_array_equal(np.asarray(obs[i]), np.asarray(single_obs))

    # Push half of the batch over the edge so done and not-done envs mix.
    x = jnp.where(jnp.arange(n) % 2 == 0, 2.399, states.x)
    x_dot = jnp.where(jnp.arange(n) % 2 == 0, 1.0, states.x_dot)
    states = CartPoleState(x, x_dot, states.theta, states.theta_dot, states.time)
    actions = jnp.arange(n) % 2
    step_keys = jax.random.split(jax.random.key(8), n)
    batched = jax.jit(jax.vmap(lambda s, a, k: env.auto_reset_step(s, a, key=k)))(
        states, actions, step_keys
    )
    assert batched[1].shape == (n, 4)
    assert np.asarray(batched[3]).sum() == n // 2
    for i in range(n):
        state_i = jax.tree.map(lambda leaf, i=i: leaf[i], states)
        single = env.auto_reset_step(state_i, actions[i], key=step_keys[i])
        for b, s in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(np.asarray(b[i]), np.asarray(s), rtol=1e-6)


# --------------------------------------------------------------------------- #
# Spaces
# --------------------------------------------------------------------------- #


def test_cartpole_spaces(env):
    assert isinstance(env.action_space, Discrete)
    assert env.action_space.n == 2
    assert isinstance(env.observation_space, Box)
    assert env.observation_space.shape == (4,)
    high = np.asarray(env.observation_space.high)
    np.testing.assert_allclose(high[[0, 2]], [2 * X_THRESHOLD, 2 * THETA_THRESHOLD])
    np.testing.assert_array_equal(np.asarray(env.observation_space.low), -high)
    _, obs = env.reset(key=jax.random.key(9))
    assert bool(env.observation_space.contains(obs))


def test_discrete_sample_and_contains():
    space = Discrete(3)
    assert space.shape == ()
    samples = np.asarray(
        jax.vmap(lambda k: space.sample(key=k))(
            jax.random.split(jax.random.key(0), 600)
        )
    )
    assert np.issubdtype(samples.dtype, np.integer)
    assert set(np.unique(samples).tolist()) == {0, 1, 2}
    assert np.all(np.asarray(jax.vmap(space.contains)(samples)))
    for inside in (0, 2, jnp.asarray(1), jnp.asarray(1.0)):
        assert bool(space.contains(inside)), inside
    for outside in (-1, 3, 1.5, jnp.asarray(-0.5)):
        assert not bool(space.contains(outside)), outside


def test_discrete_contains_rejects_non_scalars_with_a_scalar():
    result = Discrete(3).contains(jnp.asarray([1]))
    assert jnp.shape(result) == ()
    assert not bool(result)


def test_discrete_rejects_empty():
    with pytest.raises(ValueError, match="n >= 1"):
        Discrete(0)


def test_box_sample_and_contains():
    low, high = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.5, 3.0])
    space = Box(low, high)
    assert space.shape == (3,)
    samples = np.asarray(
        jax.vmap(lambda k: space.sample(key=k))(
            jax.random.split(jax.random.key(1), 500)
        )
    )
    assert samples.shape == (500, 3)
    assert np.all(samples >= low) and np.all(samples <= high)
    assert np.all(samples.max(0) - samples.min(0) > 0.9 * (high - low))
    assert np.all(np.asarray(jax.vmap(space.contains)(samples)))
    assert not bool(space.contains(jnp.asarray([0.0, 0.6, 2.5])))
    assert not bool(space.contains(jnp.asarray([-1.1, 0.1, 2.5])))
    assert not bool(space.contains(jnp.zeros(2)))  # wrong shape
    assert not bool(space.contains(jnp.zeros((3, 1))))


def test_box_with_infinite_bounds_samples_finite_values():
    space = Box(np.array([-np.inf, 0.0]), np.array([np.inf, np.inf]))
    samples = np.asarray(
        jax.vmap(lambda k: space.sample(key=k))(
            jax.random.split(jax.random.key(2), 200)
        )
    )
    assert np.all(np.isfinite(samples))
    assert np.all(samples[:, 1] >= 0.0)
    assert np.all(np.asarray(jax.vmap(space.contains)(samples)))


def test_cartpole_observation_space_samples_are_finite_and_contained(env):
    space = env.observation_space
    samples = jax.vmap(lambda k: space.sample(key=k))(
        jax.random.split(jax.random.key(3), 100)
    )
    assert np.all(np.isfinite(np.asarray(samples)))
    assert np.all(np.asarray(jax.vmap(space.contains)(samples)))


def test_box_rejects_mismatched_bounds():
    with pytest.raises(ValueError, match="shape"):
        Box(np.zeros(2), np.ones(3))


def test_space_equality_and_hashing():
    assert Discrete(2) == Discrete(2)
    assert hash(Discrete(2)) == hash(Discrete(2))
    assert Discrete(2) != Discrete(3)
    box = Box(np.array([0.0, -1.0]), np.array([1.0, 1.0]))
    same = Box([0.0, -1.0], [1.0, 1.0])
    assert box == same
    assert hash(box) == hash(same)
    assert box != Box([0.0, -1.0], [1.0, 2.0])
    assert box != Box(np.zeros((2, 1)), np.ones((2, 1)))
    assert box != Discrete(2)
    assert CartPole().observation_space == CartPole().observation_space
    assert CartPole().action_space == CartPole().action_space
    assert CartPole().observation_space != CartPole(x_threshold=3.0).observation_space
