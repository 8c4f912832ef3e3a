"""MLPActorCriticPolicy: sizes from spaces, Categorical consistency, predict.

Batched evaluations go through one jitted function (`batch_outputs`) so that a
test costs one compilation rather than one per eager operation.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax.env import AbstractEnv, Box, Discrete
from lerax.env.classic_control import CartPole
from lerax.policy import Categorical, MLPActorCriticPolicy

N = 64


class MatrixEnv(AbstractEnv):
    """A do-nothing env with a (3, 5) observation and 7 discrete actions."""

    observation_space: Box = Box(-np.ones((3, 5)), np.ones((3, 5)))
    action_space: Discrete = Discrete(7)

    def reset(self, *, key):
        obs = jax.random.uniform(key, (3, 5), minval=-1, maxval=1)
        return obs, obs

    def step(self, state, action, *, key):
        return state, state, jnp.asarray(0.0), jnp.asarray(False), jnp.asarray(False)


class ContinuousActionEnv(MatrixEnv):
    action_space: Box = Box(-np.ones(2), np.ones(2))


@eqx.filter_jit
def batch_outputs(policy, env, key):
    """Everything the tests inspect, for `N` observations from `env.reset`."""
    obs_key, action_key, call_key, predict_key = jax.random.split(key, 4)
    obs = jax.vmap(lambda k: env.reset(key=k)[1])(jax.random.split(obs_key, N))
    n_actions = env.action_space.n
    actions = jax.random.randint(action_key, (N,), 0, n_actions)
    dist = jax.vmap(policy.distribution)(obs)
    value, log_prob, entropy = jax.vmap(policy.evaluate)(obs, actions)
    call_action, call_value, call_log_prob = jax.vmap(policy)(
        obs, key=jax.random.split(call_key, N)
    )
    return {
        "obs": obs,
        "raw_logits": jax.vmap(lambda o: policy.actor(jnp.ravel(o)))(obs),
        "dist": dist,
        "value": jax.vmap(policy.value)(obs),
        "actions": actions,
        "eval_value": value,
        "eval_log_prob": log_prob,
        "eval_entropy": entropy,
        "call_action": call_action,
        "call_value": call_value,
        "call_log_prob": call_log_prob,
        "greedy": jax.vmap(policy.predict)(obs),
        "sampled": jax.vmap(lambda o, k: policy.predict(o, key=k))(
            obs, jax.random.split(predict_key, N)
        ),
    }


def log_softmax(raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw, np.float64)
    shifted = raw - raw.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def sharpen(policy, factor):
    """Scale the actor's output layer so the distribution is far from uniform."""
    return eqx.tree_at(
        lambda p: p.actor.layers[-1].weight,
        policy,
        policy.actor.layers[-1].weight * factor,
    )


@pytest.mark.parametrize(
    ("make_env", "width", "depth", "in_size", "n_actions"),
    [(CartPole, 64, 2, 4, 2), (MatrixEnv, 32, 3, 15, 7)],
)
def test_network_sizes_follow_the_spaces(make_env, width, depth, in_size, n_actions):
    env = make_env()
    policy = MLPActorCriticPolicy(
        env=env, width=width, depth=depth, key=jax.random.key(0)
    )
    assert policy.observation_space == env.observation_space
    assert policy.action_space == env.action_space
    assert (policy.width, policy.depth) == (width, depth)
    assert policy.actor.in_size == in_size and policy.actor.out_size == n_actions
    assert policy.critic.in_size == in_size and policy.critic.out_size == "scalar"
    for mlp in (policy.actor, policy.critic):
        assert mlp.width_size == width and mlp.depth == depth
        assert len(mlp.layers) == depth + 1
        assert mlp.layers[0].weight.shape == (width, in_size)

    out = batch_outputs(policy, env, jax.random.key(1))
    assert isinstance(out["dist"], Categorical)
    assert out["dist"].logits.shape == (N, n_actions)
    assert out["value"].shape == (N,)
    for name in ("call_action", "call_value", "call_log_prob", "greedy", "sampled"):
        assert out[name].shape == (N,), name
    for name in ("call_action", "greedy", "sampled"):
        actions = np.asarray(out[name])
        assert np.all((actions >= 0) & (actions < n_actions)), name


def test_initial_policy_is_near_uniform(env):
    """Orthogonal init with a 0.01 output scale: logits start close to zero."""
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    out = batch_outputs(policy, env, jax.random.key(2))
    probs = np.exp(np.asarray(out["dist"].logits))
    np.testing.assert_allclose(probs, 0.5, atol=0.02)
    for layer in (*policy.actor.layers, *policy.critic.layers):
        np.testing.assert_array_equal(np.asarray(layer.bias), 0.0)


def test_log_prob_and_entropy_match_categorical():
    env = MatrixEnv()
    policy = MLPActorCriticPolicy(env=env, width=32, depth=3, key=jax.random.key(3))
    out = batch_outputs(sharpen(policy, 300.0), env, jax.random.key(4))
    log_p = log_softmax(out["raw_logits"])
    assert np.ptp(log_p, axis=1).min() > 0.5  # genuinely non-uniform
    rows = np.arange(N)

    # The distribution is the normalised softmax of the actor's outputs.
    np.testing.assert_allclose(out["dist"].logits, log_p, rtol=1e-4, atol=1e-4)
    actions = np.asarray(out["actions"])
    assert len(np.unique(actions)) > 3
    np.testing.assert_allclose(
        out["eval_log_prob"], log_p[rows, actions], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        out["eval_entropy"], -(np.exp(log_p) * log_p).sum(1), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(out["eval_value"], out["value"], rtol=1e-6)

    # __call__ reports the value and the log-prob of the action it sampled.
    sampled = np.asarray(out["call_action"])
    np.testing.assert_allclose(
        out["call_log_prob"], log_p[rows, sampled], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(out["call_value"], out["value"], rtol=1e-6)

    # Categorical itself: invariant to an offset of the logits, normalised.
    dist = Categorical(jnp.asarray(out["raw_logits"][0]) + 123.0)
    np.testing.assert_allclose(np.exp(np.asarray(dist.logits)).sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(dist.logits, log_p[0], rtol=1e-4, atol=1e-4)
    assert int(dist.mode()) == int(np.argmax(log_p[0]))


def test_predict_greedy_is_the_mode_and_sampling_is_not(env):
    policy = sharpen(MLPActorCriticPolicy(env=env, key=jax.random.key(5)), 100.0)
    out = batch_outputs(policy, env, jax.random.key(6))
    greedy = np.asarray(out["greedy"])
    np.testing.assert_array_equal(greedy, np.asarray(out["raw_logits"]).argmax(1))
    assert len(np.unique(greedy)) == 2  # depends on the observation
    # Deterministic, and the same result for a numpy observation.
    again = batch_outputs(policy, env, jax.random.key(6))
    np.testing.assert_array_equal(greedy, np.asarray(again["greedy"]))
    assert int(policy.predict(np.asarray(out["obs"][0]))) == greedy[0]


def test_predict_with_key_samples_from_the_distribution(env):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(7))
    last = policy.actor.layers[-1]
    policy = eqx.tree_at(
        lambda p: (p.actor.layers[-1].weight, p.actor.layers[-1].bias),
        policy,
        (jnp.zeros_like(last.weight), jnp.asarray([0.0, 1.0])),
    )
    probs = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()  # [0.269, 0.731]
    obs = jnp.zeros(4)
    assert int(policy.predict(obs)) == 1

    n = 4000
    keys = jax.random.split(jax.random.key(8), n)
    sampled = np.asarray(
        eqx.filter_jit(jax.vmap(lambda k: policy.predict(obs, key=k)))(keys)
    )
    freq = np.bincount(sampled, minlength=2) / n
    # 5 standard errors of a binomial proportion.
    np.testing.assert_allclose(freq, probs, atol=5 * np.sqrt(0.27 * 0.73 / n))
    # Same key, same action.
    assert int(policy.predict(obs, key=keys[0])) == sampled[0]


def test_unsupported_action_space_raises_a_clear_type_error():
    with pytest.raises(TypeError) as info:
        MLPActorCriticPolicy(env=ContinuousActionEnv(), key=jax.random.key(0))
    message = str(info.value)
    assert "Discrete" in message and "Box" in message


def test_batched_evaluate_matches_vmapped_evaluate_and_its_gradient():
    from lerax.policy import AbstractActorCriticPolicy

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    observations = jax.random.normal(jax.random.key(1), (64, 4))
    actions = jax.random.randint(jax.random.key(2), (64,), 0, 2)
    fast = policy.evaluate_batch(observations, actions)
    reference = AbstractActorCriticPolicy.evaluate_batch(policy, observations, actions)
    for got, want in zip(fast, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def loss(evaluate):
        def total(p):
            values, log_prob, entropy = evaluate(p, observations, actions)
            return jnp.sum(values**2) + jnp.sum(log_prob) + jnp.sum(entropy)

        return eqx.filter_grad(total)(policy)

    fast_grad = loss(type(policy).evaluate_batch)
    reference_grad = loss(AbstractActorCriticPolicy.evaluate_batch)
    for got, want in zip(
        jax.tree.leaves(eqx.filter(fast_grad, eqx.is_array)),
        jax.tree.leaves(eqx.filter(reference_grad, eqx.is_array)),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
