"""Tests of the example third-party plugin, run against the installed distribution."""

import json
import math

import jax
import pytest

from lerax.algorithm import PPO
from lerax.callback import make
from lerax.env.classic_control import CartPole
from lerax.plugin import get_registry
from lerax.policy import MLPActorCriticPolicy
from lerax.testing import check_plugin


def test_conformance(tmp_path):
    report = check_plugin("jsonl", options={"jsonl": {"path": tmp_path / "m.jsonl"}})
    assert any("jsonl" in line for line in report.checked)


def test_discovered_from_its_distribution():
    info = get_registry().plugins["jsonl"]
    assert info.distribution == "lerax-jsonl"
    assert [r.name for r in info.registrations] == ["jsonl"]


def test_training_writes_every_iteration(tmp_path):
    path = tmp_path / "metrics.jsonl"
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=4, num_steps=32, num_epochs=1, num_minibatches=1)
    backend = make("jsonl", path=path)
    algo.learn(
        env,
        policy,
        5 * algo.steps_per_iteration,
        key=jax.random.key(1),
        callback=backend,
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["start"] + ["iteration"] * 5 + ["end"]
    steps = [line["step"] for line in lines if line["event"] == "iteration"]
    assert steps == [algo.steps_per_iteration * (i + 1) for i in range(5)]
    assert lines[0]["hyperparameters"]["algorithm/num_envs"] == 4


def test_non_finite_values_are_written_as_text(tmp_path):
    backend = make("jsonl", path=tmp_path / "m.jsonl")
    backend.lerax_on_training_start("run", {})
    backend.lerax_on_iteration(1, {"a": math.nan, "b": math.inf, "c": 1.5})
    backend.lerax_close()
    record = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[1])
    assert record["metrics"] == {"a": "nan", "b": "inf", "c": 1.5}


def test_unwritable_path_fails_at_construction(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match="a-file"):
        make("jsonl", path=blocker / "m.jsonl")
