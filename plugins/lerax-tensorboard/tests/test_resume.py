"""A run resumed from a checkpoint continues in its TensorBoard directory, and
rows the crashed run wrote after its checkpoint are superseded."""

import os
import shutil
import time

import jax
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary

from lerax.algorithm import PPO
from lerax.callback import CheckpointCallback
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

ALGO = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
STEPS = ALGO.steps_per_iteration
ITERATIONS = 6


def train(checkpoints, resume_from=None):
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    ALGO.learn(
        env,
        policy,
        ITERATIONS * STEPS,
        key=jax.random.key(1),
        callback=["tensorboard", checkpoints],
        resume_from=resume_from,
    )


def read(directory):
    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    accumulator.Reload()
    return accumulator


def test_resume_continues_the_run_without_duplicate_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoints = tmp_path / "checkpoints"
    train(CheckpointCallback(checkpoints, every=3, keep=None))
    (run_dir,) = (tmp_path / "runs").iterdir()
    # The crash: the last checkpoint is the one at iteration 3, and the run had
    # logged rows after it, some of a metric the resumed run never logs.
    shutil.rmtree(checkpoints / str(ITERATIONS))
    writer = EventsWriter(str(run_dir / "events"), f".{os.getpid()}.crashed")
    for iteration in (4, 5):
        value = Summary.Value(tag="crashed/only", simple_value=1.0)
        writer.write_event(
            Event(
                wall_time=time.time(),
                step=iteration * STEPS,
                summary=Summary(value=[value]),
            )
        )
    writer.close()
    time.sleep(1.1)  # event files are ordered by their names' timestamps

    train(CheckpointCallback(checkpoints, every=3, keep=None), resume_from=checkpoints)

    assert list((tmp_path / "runs").iterdir()) == [run_dir]  # the same run
    events = read(run_dir)
    steps = [event.step for event in events.Scalars("episode/return")]
    assert steps == [i * STEPS for i in range(1, ITERATIONS + 1)]
    crashed = [e.step for e in events.Scalars("crashed/only")]
    assert all(step < 3 * STEPS for step in crashed), crashed
