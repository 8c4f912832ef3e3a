"""`EvalCallback`: evaluation episodes inside the loop, their metrics, best policy, stops."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lerax.algorithm import PPO
from lerax.callback import (
    AbstractStatelessCallback,
    CallbackList,
    EvalCallback,
    LoggingCallback,
    make,
    resolve_callback,
)
from lerax.callback.evaluation import evaluate_episodes
from lerax.env import AbstractEnv
from lerax.env.classic_control import CartPole
from lerax.env.spaces import Box
from lerax.policy import MLPActorCriticPolicy
from lerax.testing.recording import MemberRecordingBackend, RecordingBackend

ITERATIONS = 12
ALGO = PPO(num_envs=4, num_steps=16, num_epochs=2, num_minibatches=2)
STEPS = ALGO.steps_per_iteration


@pytest.fixture
def policy(env):
    return MLPActorCriticPolicy(env=env, key=jax.random.key(0))


def train(env, policy, *callbacks, iterations=ITERATIONS, seed=1):
    recorder = RecordingBackend()
    trained = ALGO.learn(
        env,
        policy,
        iterations * STEPS,
        key=jax.random.key(seed),
        callback=[*callbacks, recorder],
    )
    return trained, recorder


def eval_rows(recorder):
    """`{iteration: eval metrics}` for the rows that have any."""
    return {
        step // STEPS: {k: v for k, v in metrics.items() if k.startswith("eval/")}
        for step, metrics in recorder.iterations
        if any(k.startswith("eval/") for k in metrics)
    }


def test_eval_metrics_reach_backends_at_evaluation_iterations_only(env, policy):
    _, recorder = train(env, policy, EvalCallback(every=3, episodes=4))
    rows = eval_rows(recorder)
    assert sorted(rows) == [3, 6, 9, 12]
    for metrics in rows.values():
        assert set(metrics) == {
            "eval/return_mean",
            "eval/return_std",
            "eval/length_mean",
        }
        # CartPole pays 1 per step: the mean return is the mean length.
        assert metrics["eval/return_mean"] == pytest.approx(metrics["eval/length_mean"])
        assert metrics["eval/return_std"] >= 0
    # every other row is a plain training row, with no eval entry at all
    assert len(recorder.iterations) == ITERATIONS
    # the eval entries travel in the same row as the training metrics
    third = dict(recorder.iterations)[3 * STEPS]
    assert "train/policy_loss" in third and "eval/return_mean" in third


@pytest.mark.slow
def test_evaluation_does_not_change_training(env, policy, trees_equal):
    plain, _ = train(env, policy)
    evaluated, _ = train(env, policy, EvalCallback(every=2, episodes=4))
    trees_equal(plain, evaluated)


class Snapshots(AbstractStatelessCallback):
    """Keeps the policy's parameters after every iteration, to compare with."""

    def reset(self, ctx, *, key):
        flat = ravel_pytree(eqx.filter(ctx.policy, eqx.is_inexact_array))[0]
        return jnp.zeros((ITERATIONS + 1, flat.size), flat.dtype)

    def on_iteration(self, ctx, *, key):
        flat = ravel_pytree(eqx.filter(ctx.policy, eqx.is_inexact_array))[0]
        return ctx.state.at[ctx.iteration].set(flat)

    def on_training_end(self, ctx, *, key):
        jax.debug.callback(SNAPSHOTS.append, ctx.state)
        return ctx.state


SNAPSHOTS: list = []


def test_the_best_policy_is_kept(env, policy):
    SNAPSHOTS.clear()
    evaluation = EvalCallback(every=2, episodes=4)
    trained, recorder = train(env, policy, evaluation, Snapshots())
    means = {i: m["eval/return_mean"] for i, m in eval_rows(recorder).items()}
    best = max(means, key=lambda i: (means[i], -i))  # the first of equal bests
    assert evaluation.best_return == means[best]
    assert evaluation.best_timestep == best * STEPS
    kept = ravel_pytree(eqx.filter(evaluation.best_policy, eqx.is_inexact_array))[0]
    np.testing.assert_array_equal(np.asarray(kept), np.asarray(SNAPSHOTS[-1])[best])
    assert best != ITERATIONS, "pick a setting whose best is not the last policy"
    final = ravel_pytree(eqx.filter(trained, eqx.is_inexact_array))[0]
    assert not np.array_equal(np.asarray(kept), np.asarray(final))


def test_no_evaluation_no_best_policy(env, policy):
    evaluation = EvalCallback(every=100, episodes=4)
    train(env, policy, evaluation, iterations=2)
    assert evaluation.best_policy is None and evaluation.best_return is None


def test_stop_at_threshold(env, policy):
    _, full = train(env, policy, EvalCallback(every=1, episodes=4))
    means = [m["eval/return_mean"] for m in eval_rows(full).values()]
    threshold = max(means)
    first = next(i for i, m in enumerate(means, 1) if m >= threshold)
    assert 1 < first < ITERATIONS, "pick a setting whose best is in the middle"
    _, stopped = train(
        env, policy, EvalCallback(every=1, episodes=4, stop_at=threshold)
    )
    assert stopped.ends == [(first * STEPS, "stopped")]
    assert stopped.iterations[-1][1]["eval/return_mean"] >= threshold


def test_patience(env, policy):
    patience = 2
    _, full = train(env, policy, EvalCallback(every=1, episodes=4))
    means = [m["eval/return_mean"] for m in eval_rows(full).values()]
    best, since, expected = -np.inf, 0, None
    for i, mean in enumerate(means, 1):
        best, since = (mean, 0) if mean > best else (best, since + 1)
        if since >= patience:
            expected = i
            break
    assert expected is not None, "pick a setting whose returns stall"
    _, stopped = train(
        env, policy, EvalCallback(every=1, episodes=4, patience=patience)
    )
    assert stopped.ends == [(expected * STEPS, "stopped")]


def test_stopped_reaches_every_backend(env, policy):
    backends = [RecordingBackend(), RecordingBackend()]
    ALGO.learn(
        env,
        policy,
        ITERATIONS * STEPS,
        key=jax.random.key(1),
        callback=[EvalCallback(every=1, episodes=4, stop_at=0.0), *backends],
    )
    assert [b.ends for b in backends] == [[(STEPS, "stopped")]] * 2


def test_stochastic_evaluation_differs_from_greedy(env, policy):
    keys = jax.random.split(jax.random.key(3), 8)
    greedy, _ = evaluate_episodes(policy, env, keys)
    again, _ = evaluate_episodes(policy, env, keys)
    sampled, _ = evaluate_episodes(policy, env, keys, deterministic=False)
    np.testing.assert_array_equal(greedy, again)
    assert not np.array_equal(greedy, sampled)


def test_max_episode_steps_bounds_episodes(env, policy):
    keys = jax.random.split(jax.random.key(3), 8)
    _, lengths = evaluate_episodes(policy, env, keys, max_episode_steps=5)
    assert np.all(np.asarray(lengths) <= 5)


def test_registered_as_eval():
    assert isinstance(resolve_callback("eval"), EvalCallback)
    built = make("eval", every=4, episodes=2)
    assert (built.every, built.episodes) == (4, 2)
    both = resolve_callback(["eval", RecordingBackend()])
    assert isinstance(both, CallbackList)
    assert isinstance(both.callbacks[0], EvalCallback)
    assert isinstance(both.callbacks[1], LoggingCallback)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": 0}, "every must be >= 1"),
        ({"every": -3}, "every must be >= 1"),
        ({"episodes": 0}, "episodes must be >= 1"),
        ({"patience": 0}, "patience must be >= 1"),
        ({"max_episode_steps": 0}, "max_episode_steps must be >= 1"),
        ({"stop_at": float("nan")}, "stop_at must be a number"),
    ],
)
def test_bad_settings_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        EvalCallback(**options)


@pytest.mark.parametrize(
    "options", [{"every": 1.5}, {"episodes": "4"}, {"env": "CartPole"}]
)
def test_bad_types_fail_at_construction(options):
    with pytest.raises(TypeError):
        EvalCallback(**options)


class Wider(AbstractEnv):
    """CartPole with a fifth observation: another observation space."""

    inner: CartPole = CartPole()

    @property
    def observation_space(self):
        return Box(np.full(5, -np.inf), np.full(5, np.inf))

    @property
    def action_space(self):
        return self.inner.action_space

    def reset(self, *, key):
        state, obs = self.inner.reset(key=key)
        return state, jnp.append(obs, 0.0)

    def step(self, state, action, *, key):
        state, obs, *rest = self.inner.step(state, action, key=key)
        return (state, jnp.append(obs, 0.0), *rest)


def test_an_env_with_other_spaces_is_refused(env, policy):
    with pytest.raises(ValueError, match="observation_space"):
        train(env, policy, EvalCallback(Wider(), episodes=4), iterations=1)


class Reporter(AbstractStatelessCallback):
    def metrics(self, state):
        return {"eval/return_mean": jnp.asarray(1.0)}


def test_two_callbacks_may_not_report_one_name(env, policy):
    with pytest.raises(ValueError, match="eval/return_mean"):
        train(env, policy, EvalCallback(episodes=4), Reporter(), iterations=1)


def test_reported_metrics_travel_with_their_iteration(env, policy):
    class Iteration(AbstractStatelessCallback):
        def reset(self, ctx, *, key):
            return jnp.zeros((), jnp.int32)

        def on_iteration(self, ctx, *, key):
            return ctx.iteration

        def metrics(self, state):
            odd = state % 2 == 1
            return {"custom/iteration": jnp.where(odd, state, jnp.nan)}

    _, recorder = train(env, policy, Iteration(), iterations=5)
    seen = [
        (step // STEPS, m.get("custom/iteration")) for step, m in recorder.iterations
    ]
    assert seen == [(1, 1.0), (2, None), (3, 3.0), (4, None), (5, 5.0)]


def test_the_core_names_survive_plugin_selection(monkeypatch):
    from lerax.plugin import reload_registry

    monkeypatch.setenv("LERAX_PLUGINS", "console")
    try:
        reload_registry()
        assert isinstance(make("eval"), EvalCallback)
    finally:
        monkeypatch.delenv("LERAX_PLUGINS")
        reload_registry()


# --------------------------------------------------------------------------- #
# Many members
# --------------------------------------------------------------------------- #

RESETS: list[int] = []


def count_reset(_) -> None:
    RESETS.append(1)


class Counted(AbstractEnv):
    """CartPole that counts its resets on the host: one per evaluation episode
    (and per member: under `vmap` the callback runs once per element)."""

    inner: CartPole = CartPole()

    @property
    def observation_space(self):
        return self.inner.observation_space

    @property
    def action_space(self):
        return self.inner.action_space

    def reset(self, *, key):
        jax.debug.callback(count_reset, jax.random.key_data(key))
        return self.inner.reset(key=key)

    def step(self, state, action, *, key):
        return self.inner.step(state, action, key=key)


class StopMemberZero(AbstractStatelessCallback):
    """Stops member 0 after its first iteration; the others train on."""

    def continue_training(self, ctx, *, key):
        return (ctx.member != 0) | (ctx.iteration < 1)


def test_members_evaluate_at_evaluation_iterations_only(env, policy):
    # A cond whose predicate is batched over members runs the evaluation every
    # iteration; so would a stopped member whose frozen iteration is due.
    RESETS.clear()
    keys = jax.random.split(jax.random.key(1), 3)
    evaluation = EvalCallback(Counted(), every=2, episodes=2, max_episode_steps=20)
    ALGO.learn(env, policy, 8 * STEPS, key=keys,
               callback=[evaluation, StopMemberZero()])  # fmt: skip
    jax.effects_barrier()
    # iterations 2, 4, 6 and 8: each evaluates 2 episodes for each of 3 members
    assert len(RESETS) == 4 * 3 * 2


def train_members(env, policy, keys, *callbacks, iterations=4, backends=()):
    recorder = MemberRecordingBackend()
    with LoggingCallback([recorder, *backends]) as logger:
        ALGO.learn(env, policy, iterations * STEPS, key=keys,
                   callback=[*callbacks, logger])  # fmt: skip
    return recorder


@pytest.mark.slow  # two programs to compile: ~20 s
def test_members_eval_metrics_equal_separate_runs(env, policy):
    keys = jax.random.split(jax.random.key(1), 2)
    recorder = train_members(env, policy, keys, EvalCallback(every=2, episodes=4))
    for i, key in enumerate(keys):
        alone = RecordingBackend()
        ALGO.learn(env, policy, 4 * STEPS, key=key,
                   callback=[EvalCallback(every=2, episodes=4), alone])  # fmt: skip
        expected = eval_rows(alone)
        assert sorted(expected) == [2, 4]
        got = eval_rows(recorder.runs[i])
        assert got.keys() == expected.keys()
        for iteration, metrics in expected.items():
            assert got[iteration] == pytest.approx(metrics, rel=1e-5)


def test_the_aggregate_row_has_the_members_eval_metrics(env, policy):
    keys = jax.random.split(jax.random.key(1), 2)
    single_run = RecordingBackend()  # no `member`: receives the aggregate
    recorder = train_members(env, policy, keys, EvalCallback(every=2, episodes=4),
                             backends=[single_run])  # fmt: skip
    rows = eval_rows(single_run)
    assert sorted(rows) == [2, 4]  # not at the iterations between evaluations
    assert single_run.iterations == recorder.runs[None].iterations
    for iteration, row in rows.items():
        own = [eval_rows(recorder.runs[m])[iteration] for m in (0, 1)]
        for name in ("eval/return_mean", "eval/return_std", "eval/length_mean"):
            values = [metrics[name] for metrics in own]
            assert row[name] == pytest.approx(np.mean(values), rel=1e-5)
            assert row[f"{name}_std"] == pytest.approx(np.std(values), abs=1e-4)
            assert row[f"{name}_min"] == min(values)
            assert row[f"{name}_max"] == max(values)
        assert len(row) == 12  # those three, each with its spread
