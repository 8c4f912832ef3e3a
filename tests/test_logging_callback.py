"""LoggingCallback: what backends receive, in what order, and what happens on faults."""

import math
import os
import re
import sys
import threading
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax.algorithm import PPO
from lerax.callback import AbstractLoggingBackend, LoggingCallback
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

ALGO = PPO(num_envs=4, num_steps=32, num_epochs=1, num_minibatches=1)
ITERATIONS = 6


class Recorder(AbstractLoggingBackend):
    def __init__(self, delay: float = 0.0):
        self.events: list[tuple] = []
        self.delay = delay
        self.threads: set[str] = set()
        self.closes = 0

    def lerax_on_training_start(self, run_name, hyperparameters):
        self.events.append(("start", run_name, dict(hyperparameters)))

    def lerax_on_iteration(self, step, metrics):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        self.events.append(("iteration", step, dict(metrics)))

    def lerax_on_training_end(self, step, reason):
        self.events.append(("end", step, reason))

    def lerax_close(self):
        self.closes += 1

    def iterations(self):
        return [e for e in self.events if e[0] == "iteration"]


class Exploding(Recorder):
    def lerax_on_iteration(self, step, metrics):
        raise ValueError("backend failure")


def train(callback, iterations=ITERATIONS, key=1):
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    return ALGO.learn(
        env,
        policy,
        iterations * ALGO.steps_per_iteration,
        key=jax.random.key(key),
        callback=callback,
    )


def test_backends_get_start_every_iteration_end_and_close_in_order():
    recorder = Recorder()
    with LoggingCallback([recorder]) as logger:
        train(logger)
    kinds = [event[0] for event in recorder.events]
    assert kinds == ["start"] + ["iteration"] * ITERATIONS + ["end"]
    steps = [event[1] for event in recorder.iterations()]
    assert steps == [ALGO.steps_per_iteration * (i + 1) for i in range(ITERATIONS)]
    assert recorder.events[-1][:2] == ("end", ITERATIONS * ALGO.steps_per_iteration)
    assert recorder.closes == 1
    (thread,) = recorder.threads  # one thread of its own, off the training thread
    assert thread.startswith("lerax-logging-Recorder#0"), thread


def test_metric_names_and_plain_python_values():
    recorder = Recorder()
    with LoggingCallback([recorder]) as logger:
        train(logger)
    names = set(recorder.iterations()[-1][2])
    expected = {
        "episode/return",
        "episode/length",
        "episode/return_ema",
        "episode/length_ema",
        "episode/count",
        "episode/return_mean",  # deprecated, for one release
        "episode/length_mean",
        "time/iteration",
        "time/steps_per_second",
        *(f"train/{k}" for k in ("policy_loss", "value_loss", "entropy", "approx_kl")),
        *(
            f"train/{k}"
            for k in ("clip_fraction", "explained_variance", "learning_rate")
        ),
    }
    assert expected <= names
    for _, _, metrics in recorder.iterations():
        assert all(type(v) is float for v in metrics.values())
    rates = [metrics["time/steps_per_second"] for *_, metrics in recorder.iterations()]
    assert all(rate > 0 and math.isfinite(rate) for rate in rates)
    updates = ALGO.num_epochs * ALGO.num_minibatches  # per iteration
    for i, (_, _, metrics) in enumerate(recorder.iterations()):
        last_update = (i + 1) * updates - 1  # the rate logged is the last one used
        assert metrics["train/learning_rate"] == pytest.approx(
            ALGO.learning_rate * (1 - last_update / (ITERATIONS * updates)), rel=1e-5
        )


def test_episode_metrics_match_an_independent_ema():
    recorder = Recorder()
    with LoggingCallback([recorder], ema_weight=0.25) as logger:
        train(logger)
    ema = None
    for _, _, m in recorder.iterations():
        # CartPole: the return of an episode is its length
        assert m["episode/return_ema"] == pytest.approx(m["episode/length_ema"])
        if m["episode/count"] > 0:
            mean = m["episode/return"]
            assert mean == pytest.approx(m["episode/length"])
            ema = mean if ema is None else 0.75 * ema + 0.25 * mean
        else:
            assert math.isnan(m["episode/return"])
        assert m["episode/return_ema"] == pytest.approx(ema, rel=1e-5)
    assert ema is not None


def test_the_old_names_carry_the_iteration_means_for_one_release():
    """`episode/return_mean` and `episode/length_mean` were the iteration's means
    before the rename; they still are, beside the new names, until removed."""
    from lerax.logging import DEPRECATED_METRICS

    assert DEPRECATED_METRICS == {
        "episode/return_mean": "episode/return",
        "episode/length_mean": "episode/length",
    }
    recorder = Recorder()
    with LoggingCallback([recorder]) as logger:
        train(logger)
    for _, _, m in recorder.iterations():
        for old, new in DEPRECATED_METRICS.items():
            assert m[old] == m[new] or (math.isnan(m[old]) and math.isnan(m[new]))


def test_run_name_and_hyperparameters():
    first, second, named = Recorder(), Recorder(), Recorder()
    for backend, name in ((first, None), (second, None), (named, "my-run")):
        with LoggingCallback([backend], name=name) as logger:
            train(logger, iterations=1)
    run_a, run_b = first.events[0][1], second.events[0][1]
    assert re.fullmatch(r"PPO-CartPole-\d{8}-\d{6}-\d+\.\d+", run_a)
    assert run_a != run_b, "run names must be unique"
    assert named.events[0][1] == "my-run"
    hyperparameters = first.events[0][2]
    assert hyperparameters["algorithm/num_envs"] == ALGO.num_envs
    assert hyperparameters["env/max_episode_steps"] == 500
    assert hyperparameters["policy/class"] == "MLPActorCriticPolicy"
    assert hyperparameters["run/total_timesteps"] == ALGO.steps_per_iteration
    assert all(
        isinstance(v, bool | int | float | str) for v in hyperparameters.values()
    )


def test_failing_backend_is_reported_once_and_others_get_everything():
    good, bad = Recorder(), Exploding()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with LoggingCallback([bad, good]) as logger:
            policy = train(logger)
    reports = [str(w.message) for w in caught if "Exploding" in str(w.message)]
    assert len(reports) == 1 and "backend failure" in reports[0]
    assert len(good.iterations()) == ITERATIONS
    assert np.all(np.isfinite(jax.tree.leaves(policy.actor)[0]))


def test_warnings_as_errors_do_not_stop_the_logging_thread(capfd):
    good, bad = Recorder(), Exploding()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as `python -W error` does
        with LoggingCallback([bad, good]) as logger:
            train(logger)
    assert len(good.iterations()) == ITERATIONS, "the healthy backend got every row"
    assert good.closes == 1
    err = capfd.readouterr().err
    assert err.count("Exploding#0 raised in") == 1, err


class Gated(Recorder):
    """A backend that cannot write a row until the test opens its gate."""

    def __init__(self, log: list):
        super().__init__()
        self.gate, self.log = threading.Event(), log

    def lerax_on_iteration(self, step, metrics):
        self.gate.wait(10)  # bounded, so that a regression fails rather than hangs
        self.log.append(("row", step))
        super().lerax_on_iteration(step, metrics)


def test_slow_backend_does_not_stall_training_and_loses_nothing():
    log: list = []
    gated = Gated(log)
    with LoggingCallback([gated]) as logger:
        train(logger)
        log.append(("learn returned", None))  # while the backend is held up
        gated.gate.set()
    steps = [ALGO.steps_per_iteration * (i + 1) for i in range(ITERATIONS)]
    # Training finished before the backend wrote anything; close() then
    # delivered every row, in order.
    assert log == [("learn returned", None)] + [("row", step) for step in steps]
    assert [e[1] for e in gated.iterations()] == steps and gated.closes == 1


def test_one_logger_logs_several_runs_until_closed_then_frees_its_host_side():
    from lerax import host

    recorder = Recorder()
    logger = LoggingCallback(recorder)
    train(logger, iterations=2)
    train(logger, iterations=2)
    assert [e[0] for e in recorder.events].count("start") == 2
    logger.close()
    logger.close()
    assert recorder.closes == 1
    with pytest.raises(LookupError, match="cannot be reused"):
        host.lookup(logger.handle)
    with pytest.raises(Exception, match="cannot be reused"):
        train(logger, iterations=1)


def test_non_finite_metrics_reach_backends_as_such():
    from lerax.logging import HostLogger

    recorder = Recorder()
    host = HostLogger([recorder], None, close_at_end=False)
    values = np.array([np.nan, np.inf, -np.inf], np.float32)
    one = np.ones(1, bool)  # the calls carry a leading axis of members
    host.iteration(
        np.zeros(1, np.int32),
        np.full(1, 10, np.int32),
        values[None],
        one,
        np.zeros(1, np.float32),
        np.zeros(1, np.int32),
        np.zeros(1, np.int32),
        running=one,
        names=("a", "b", "c"),
    )
    host.dispatcher.close()
    (event,) = recorder.iterations()
    assert (
        math.isnan(event[2]["a"])
        and event[2]["b"] == math.inf
        and event[2]["c"] == -math.inf
    )


def test_non_backend_is_rejected_with_a_clear_error():
    with pytest.raises(TypeError, match="AbstractLoggingBackend"):
        LoggingCallback([object()])


def test_backend_with_a_bad_hook_signature_is_rejected():
    class Wrong(Recorder):
        def lerax_on_iteration(self, step, metrics, extra):
            pass

    with pytest.raises(Exception, match="extra"):
        LoggingCallback([Wrong()])


def test_training_end_says_why_it_ended():
    from lerax.callback import AbstractStatelessCallback

    class StopAtTwo(AbstractStatelessCallback):
        def continue_training(self, ctx, *, key):
            return ctx.iteration < 2

    full, early = Recorder(), Recorder()
    with LoggingCallback([full]) as logger:
        train(logger)
    with LoggingCallback([early]) as logger:
        train([StopAtTwo(), logger])
    assert full.events[-1] == (
        "end",
        ITERATIONS * ALGO.steps_per_iteration,
        "completed",
    )
    assert early.events[-1] == ("end", 2 * ALGO.steps_per_iteration, "stopped")
    # Every iteration that ran reaches the backends, the last one before the end.
    assert [event[0] for event in early.events] == [
        "start",
        "iteration",
        "iteration",
        "end",
    ]
    for recorder in (full, early):
        for step, metrics in ((e[1], e[2]) for e in recorder.iterations()):
            assert step == metrics["time/iteration"] * ALGO.steps_per_iteration


def _train_vmapped_over_seeds(seeds: int, iterations: int | list[int]):
    """Train `seeds` seeds under one `vmap` and one `LoggingCallback`; return the
    trained policies and what the backend received.

    `iterations` is shared by all seeds (an unbatched total, so the loop's
    condition is unbatched too) or given per seed (a batched one).
    """
    recorder = Recorder()
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    totals = jnp.asarray(iterations, jnp.int32) * ALGO.steps_per_iteration
    keys = jax.random.split(jax.random.key(0), seeds)
    with LoggingCallback([recorder]) as logger:
        trained = eqx.filter_vmap(
            lambda total, key: ALGO.train(env, policy, logger, total, key=key),
            in_axes=(0 if totals.ndim else None, 0),
        )(totals, keys)
        jax.block_until_ready(trained)
    return trained, recorder


def test_logged_training_can_be_vmapped_over_seeds():
    trained, recorder = _train_vmapped_over_seeds(3, 2)
    layer = trained.actor.layers[0].weight
    assert layer.shape[0] == 3 and not jnp.allclose(layer[0], layer[1])
    assert len(recorder.iterations()) == 3 * 2, "each seed's iterations are logged"


def test_vmapped_seeds_that_stop_early_log_each_iteration_once():
    # Seed 0 trains 1 iteration, seed 1 trains 3: JAX runs the loop body for
    # both until seed 1 stops, with seed 0's state frozen.
    _, recorder = _train_vmapped_over_seeds(2, [1, 3])
    steps = sorted(event[1] for event in recorder.iterations())
    per_iteration = ALGO.steps_per_iteration
    assert steps == [per_iteration, per_iteration, 2 * per_iteration, 3 * per_iteration]


def test_log_every_delivers_every_kth_iteration_and_the_last():
    recorder = Recorder()
    with LoggingCallback([recorder], log_every=3) as logger:
        ALGO.learn(
            CartPole(),
            MLPActorCriticPolicy(env=CartPole(), key=jax.random.key(0)),
            7 * ALGO.steps_per_iteration,
            key=jax.random.key(1),
            callback=logger,
        )
    iterations = [event[2]["time/iteration"] for event in recorder.iterations()]
    assert iterations == [3, 6, 7]
    steps = [event[1] for event in recorder.iterations()]
    assert steps == [i * ALGO.steps_per_iteration for i in (3, 6, 7)]
    # Steps/s spans the iterations skipped in between (from the start, at first).
    rates = [event[2]["time/steps_per_second"] for event in recorder.iterations()]
    assert all(rate > 0 for rate in rates)


@pytest.mark.parametrize(
    ("log_every", "error"), [(0, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_bad_log_every_is_refused_at_construction(log_every, error):
    with pytest.raises(error, match="log_every"):
        LoggingCallback([Recorder()], log_every=log_every)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"backends": None}, TypeError, "backend instance or a list"),
        ({"backends": "console"}, TypeError, "make\\('console'\\)"),
        ({"backends": [Recorder]}, TypeError, "not an instance"),
        ({"backends": [], "name": 5}, TypeError, "name must be a str"),
        ({"backends": [], "name": "x" * 300}, ValueError, "1 to 128 characters"),
        ({"backends": [], "ema_weight": "x"}, TypeError, "ema_weight must be"),
        ({"backends": [], "ema_weight": 5.0}, ValueError, r"\(0, 1\]"),
        ({"backends": [], "ema_weight": math.nan}, ValueError, r"\(0, 1\]"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, error, message):
    with pytest.raises(error, match=message):
        LoggingCallback(**kwargs)


class Stuck(Recorder):
    """A backend that blocks forever in its first row (a hung network call)."""

    def lerax_on_iteration(self, step, metrics):
        threading.Event().wait()


def test_a_stuck_backend_costs_the_others_nothing_and_close_is_bounded():
    from lerax.logging import BackendDispatcher

    good = Recorder()
    dispatcher = BackendDispatcher([Stuck(), good], maxsize=50)
    dispatcher.submit("lerax_on_training_start", run_name="r", hyperparameters={})
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(1, 101):
            dispatcher.submit("lerax_on_iteration", step=step, metrics={"m": 1.0})
            time.sleep(0.002)  # rows arrive at an iteration's pace
        submitted_in = time.perf_counter() - start
        dispatcher.submit("lerax_on_training_end", step=100, reason="completed")
        dispatcher.close(timeout=1.0)
    closed_in = time.perf_counter() - start
    assert submitted_in < 1.0, "submitting waited for the stuck backend"
    assert closed_in < 5.0, "close() waited past its deadline"
    assert [e[1] for e in good.iterations()] == list(range(1, 101))
    assert good.closes == 1
    messages = [str(w.message) for w in caught]
    assert any("Stuck#0" in m and "slower than training" in m for m in messages)
    assert any("Stuck#0" in m and "did not finish within 1 s" in m for m in messages)
    with pytest.raises(RuntimeError, match="closed"):
        dispatcher.submit("lerax_on_iteration", step=101, metrics={})


class GatedMembers(Gated):
    """A gated backend that takes members: a row per member and the aggregate."""

    def lerax_on_iteration(self, step, metrics, member=None):
        super().lerax_on_iteration(step, {**metrics, "member": member})


def test_a_many_member_run_queues_maxsize_iterations_of_every_members_rows():
    from lerax.logging import BackendDispatcher

    gated = GatedMembers([])
    dispatcher = BackendDispatcher([gated], maxsize=4)
    dispatcher.members = 3  # as the logger sets it at a many-member start
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(1, 5):  # 4 iterations, all queued behind the gate
            for member in (0, 1, 2):
                dispatcher.submit(
                    "lerax_on_iteration", step=step, metrics={}, member=member
                )
            dispatcher.submit("lerax_on_iteration", step=step, metrics={}, group="g")
        gated.gate.set()
        dispatcher.close(timeout=10.0)
    rows = [(e[1], e[2]["member"]) for e in gated.iterations()]
    assert rows == [(s, m) for s in range(1, 5) for m in (0, 1, 2, None)]
    assert not [w for w in caught if "slower than training" in str(w.message)]


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities: Linux")
def test_backends_run_at_the_lowest_cpu_priority_and_training_at_its_own():
    class Priorities(Recorder):
        def lerax_on_iteration(self, step, metrics):
            self.threads.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    backend = Priorities()
    with LoggingCallback([backend]) as logger:
        train(logger)
    assert backend.threads == {19}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
