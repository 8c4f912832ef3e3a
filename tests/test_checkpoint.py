"""`CheckpointCallback` and `learn(..., resume_from=...)`."""

import os
import shutil
import sys
import warnings
from pathlib import Path

import jax
import pytest

from lerax.algorithm import A2C, PPO
from lerax.callback import (
    AbstractCallback,
    CheckpointCallback,
    CheckpointError,
    EvalCallback,
)
from lerax.callback.checkpoint import latest_checkpoint
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy
from lerax.testing.recording import RecordingBackend

ALGO = PPO(num_envs=4, num_steps=16, num_epochs=1, num_minibatches=1)
STEPS = ALGO.steps_per_iteration
ITERATIONS = 8


@pytest.fixture
def policy(env):
    return MLPActorCriticPolicy(env=env, key=jax.random.key(0))


def train(env, policy, *callbacks, algo=ALGO, resume_from=None, iterations=ITERATIONS):
    return algo.learn(
        env,
        policy,
        iterations * algo.steps_per_iteration,
        key=jax.random.key(1),
        callback=list(callbacks),
        resume_from=resume_from,
    )


def steps_in(directory: Path) -> list[int]:
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One uninterrupted run with a checkpoint after every iteration."""
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    directory = tmp_path_factory.mktemp("full")
    recorder = RecordingBackend()
    checkpoints = CheckpointCallback(directory, every=1, keep=None)
    trained = train(env, policy, checkpoints, recorder)
    return directory, trained, recorder


def crashed_copy(full_directory: Path, target: Path, latest: int) -> Path:
    """The checkpoints a run killed after writing `latest` would have left."""
    shutil.copytree(full_directory, target)
    for step in steps_in(target):
        if step > latest:
            shutil.rmtree(target / str(step))
    return target


def test_cadence_and_keep(env, policy, tmp_path):
    checkpoints = CheckpointCallback(tmp_path, every=3, keep=2)
    train(env, policy, checkpoints)
    assert checkpoints.checkpointer.written == [3, 6, 8]  # and at the end
    assert steps_in(tmp_path) == [6, 8]
    assert latest_checkpoint(tmp_path) == (8, tmp_path / "8")


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities: Linux")
def test_checkpoints_are_written_at_the_lowest_cpu_priority(env, policy, tmp_path):
    checkpoints = CheckpointCallback(tmp_path, every=3)
    train(env, policy, checkpoints)
    writer = checkpoints.checkpointer._thread
    assert writer is not None and writer.native_id is not None
    assert os.getpriority(os.PRIO_PROCESS, writer.native_id) == 19
    checkpoints.close()


def test_all_kept_with_keep_none(full_run):
    directory, _, _ = full_run
    assert steps_in(directory) == list(range(1, ITERATIONS + 1))


@pytest.mark.parametrize("latest", [1, 4, 7])
def test_resumed_run_equals_the_uninterrupted_one(
    full_run, env, policy, tmp_path, latest, trees_equal
):
    full_directory, uninterrupted, full_recorder = full_run
    directory = crashed_copy(full_directory, tmp_path / "run", latest)
    recorder = RecordingBackend()
    resumed = train(
        env,
        policy,
        CheckpointCallback(directory, every=1, keep=None),
        recorder,
        resume_from=directory,
    )
    trees_equal(resumed, uninterrupted)
    # the run continues under its name, from the checkpoint's step, to the end
    assert recorder.run_name == full_recorder.run_name
    steps = [step for step, _ in recorder.iterations]
    assert steps == [s * STEPS for s in range(latest, ITERATIONS + 1)]
    # its rows are the uninterrupted run's rows (timing aside)
    timing = ("time/steps_per_second",)
    full_rows = dict(full_recorder.iterations)
    for step, metrics in recorder.iterations:
        expected = {k: v for k, v in full_rows[step].items() if k not in timing}
        got = {k: v for k, v in metrics.items() if k not in timing}
        assert got.keys() == expected.keys()
        for name in got:
            assert got[name] == pytest.approx(expected[name], nan_ok=True), name
    assert recorder.ends == [(ITERATIONS * STEPS, "completed")]


def test_resuming_a_finished_run_trains_no_more(full_run, env, policy, trees_equal):
    directory, uninterrupted, _ = full_run
    recorder = RecordingBackend()
    resumed = train(
        env,
        policy,
        CheckpointCallback(directory, every=1, keep=None),
        recorder,
        resume_from=directory,
    )
    trees_equal(resumed, uninterrupted)
    assert [step for step, _ in recorder.iterations] == [ITERATIONS * STEPS]


def test_a_run_with_evaluation_resumes_to_the_uninterrupted_result(
    env, policy, tmp_path, trees_equal
):
    def callbacks(directory):
        evaluation = EvalCallback(every=2, episodes=2)
        return evaluation, CheckpointCallback(directory, every=1, keep=None)

    evaluation, checkpoints = callbacks(tmp_path / "full")
    uninterrupted = train(env, policy, evaluation, checkpoints, iterations=4)
    best = evaluation.best_return
    directory = crashed_copy(tmp_path / "full", tmp_path / "crashed", 3)
    evaluation, checkpoints = callbacks(directory)
    resumed = train(
        env, policy, evaluation, checkpoints, iterations=4, resume_from=directory
    )
    trees_equal(resumed, uninterrupted)
    assert evaluation.best_return == best


class StopAtTwo(AbstractCallback):
    """Stops training after iteration 2, as an early-stopping rule would."""

    def reset(self, ctx, *, key):
        return None

    def step_reset(self, ctx, *, key):
        return None

    def continue_training(self, ctx, *, key):
        return ctx.iteration < 2


def test_resuming_an_early_stopped_run_trains_no_more(
    env, policy, tmp_path, trees_equal
):
    first = RecordingBackend()
    checkpoints = CheckpointCallback(tmp_path, every=1)
    stopped = train(env, policy, StopAtTwo(), checkpoints, first)
    assert first.ends[0][1] == "stopped" and len(first.iterations) == 2
    recorder = RecordingBackend()
    checkpoints = CheckpointCallback(tmp_path, every=1)
    resumed = train(
        env, policy, StopAtTwo(), checkpoints, recorder, resume_from=tmp_path
    )
    trees_equal(resumed, stopped)
    assert recorder.ends[0][1] == "stopped"
    assert [step for step, _ in recorder.iterations] == [2 * STEPS]


def test_best_by_keeps_the_best_evaluated_checkpoint(env, policy, tmp_path):
    evaluation = EvalCallback(every=1, episodes=4)
    checkpoints = CheckpointCallback(
        tmp_path, every=1, keep=1, best_by="eval/return_mean"
    )
    recorder = RecordingBackend()
    train(env, policy, evaluation, checkpoints, recorder)
    means = {
        step // STEPS: m["eval/return_mean"]
        for step, m in recorder.iterations
        if "eval/return_mean" in m
    }
    best = max(means, key=lambda i: (means[i], -i))
    assert steps_in(tmp_path) == [ITERATIONS]
    assert steps_in(tmp_path / "best") == [best]
    # A resumed run compares its evaluations with the one kept, read back.
    kept = checkpoints.checkpointer._best_so_far(tmp_path / "best")
    assert kept == pytest.approx(means[best])


def test_best_by_needs_a_reported_metric(env, policy, tmp_path):
    with pytest.raises(ValueError, match=r"eval/return_mean.*EvalCallback"):
        train(
            env,
            policy,
            CheckpointCallback(tmp_path, best_by="eval/return_mean"),
            iterations=1,
        )


# --------------------------------------------------------------------------- #
# Bad input and faults: clear errors naming the path, before compiling
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("options", "message"),
    [({"every": 0}, "every must be >= 1"), ({"keep": 0}, "keep must be >= 1")],
)
def test_bad_settings_fail_at_construction(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        CheckpointCallback(tmp_path, **options)


def test_an_unwritable_directory_fails_at_construction(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match=r"cannot write checkpoints to .*file/run"):
        CheckpointCallback(blocker / "run")


def refused(compile_counter, expected, match, env, policy, callbacks=(), **learn):
    with compile_counter() as compiles, pytest.raises(expected, match=match):
        train(env, policy, *callbacks, **learn)
    assert compiles.compiles_of("run_loop") == 0, "refused after compiling"


def test_no_checkpoint(env, policy, tmp_path, compile_counter):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(
        compile_counter,
        FileNotFoundError,
        r"empty.*no complete checkpoint",
        env=env,
        policy=policy,
        resume_from=empty,
    )
    refused(
        compile_counter,
        FileNotFoundError,
        r"missing.*no such directory",
        env=env,
        policy=policy,
        resume_from=tmp_path / "missing",
    )


def test_another_policy_shape(full_run, env, compile_counter, tmp_path):
    directory = crashed_copy(full_run[0], tmp_path / "run", 3)
    narrow = MLPActorCriticPolicy(env=env, width=32, key=jax.random.key(0))
    refused(
        compile_counter,
        CheckpointError,
        r"run/3.*policy/width: 64 there, 32 here",
        env=env,
        policy=narrow,
        resume_from=directory,
    )


def test_another_algorithm(full_run, env, policy, compile_counter, tmp_path):
    directory = crashed_copy(full_run[0], tmp_path / "run", 3)
    refused(
        compile_counter,
        CheckpointError,
        r"run/3.*algorithm/class: 'PPO' there, 'A2C' here",
        env=env,
        policy=policy,
        algo=A2C(num_envs=4, num_steps=16),
        resume_from=directory,
    )


def test_another_callback_list(full_run, env, policy, compile_counter, tmp_path):
    directory = crashed_copy(full_run[0], tmp_path / "run", 3)
    refused(
        compile_counter,
        CheckpointError,
        r"run/3.*another shape",
        env=env,
        policy=policy,
        resume_from=directory,  # no CheckpointCallback: another carry
    )


def test_a_corrupted_checkpoint(full_run, env, policy, compile_counter, tmp_path):
    directory = crashed_copy(full_run[0], tmp_path / "run", 3)
    for path in (directory / "3" / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 64:
            data = bytearray(path.read_bytes())
            data[len(data) // 2 :] = b"\xff" * (len(data) - len(data) // 2)
            path.write_bytes(bytes(data))
    refused(
        compile_counter,
        CheckpointError,
        r"run/3.*cannot be read",
        env=env,
        policy=policy,
        callbacks=[CheckpointCallback(directory, every=1), RecordingBackend()],
        resume_from=directory,
    )


def test_a_failed_write_is_reported_and_training_goes_on(env, policy, tmp_path):
    directory = tmp_path / "run"
    checkpoints = CheckpointCallback(directory, every=2)
    shutil.rmtree(directory)
    directory.write_text("the disk is full")  # every write will fail
    recorder = RecordingBackend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(env, policy, checkpoints, recorder, iterations=4)
    assert any("writing a checkpoint" in str(w.message) for w in caught)
    assert len(recorder.iterations) == 4 and recorder.ends[0][1] == "completed"
