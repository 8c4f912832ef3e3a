"""Tests of the example third-party plugin, run against the installed distribution."""

import json
import math
import os
from pathlib import Path

import jax
import pytest

from lerax.algorithm import PPO
from lerax.callback import make
from lerax.env.classic_control import CartPole
from lerax.plugin import get_registry
from lerax.policy import MLPActorCriticPolicy
from lerax.testing import check_plugin
from lerax_jsonl import MAX_NAME, JsonlBackend


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


def test_a_directory_as_path_fails_at_construction(tmp_path):
    with pytest.raises(OSError, match="it is a directory"):
        JsonlBackend(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_device_as_path_fails_at_construction():
    with pytest.raises(OSError, match="not a regular file"):
        JsonlBackend("/dev/full")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc here")
def test_a_path_nobody_can_write_fails_at_construction():
    with pytest.raises(
        OSError, match=r"cannot write metrics to '/proc/lerax/m\.jsonl'"
    ):
        JsonlBackend("/proc/lerax/m.jsonl")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_directory_fails_at_construction(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OSError, match="locked"):
        JsonlBackend(locked / "m.jsonl")
    with pytest.raises(OSError, match="not writable"):
        JsonlBackend(directory=locked / "runs")


def test_a_default_directory_under_a_file_fails_at_construction(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError, match="is not a directory"):
        JsonlBackend(directory=tmp_path / "a-file" / "runs")
    assert JsonlBackend(directory=tmp_path / "new" / "runs").path is None
    assert not (tmp_path / "new").exists(), "nothing is created before a run starts"


@pytest.mark.parametrize("options", [{"path": 5}, {"directory": None}])
def test_a_path_that_is_not_a_path_is_refused(options):
    with pytest.raises(TypeError, match="must be a str or a path"):
        JsonlBackend(**options)


@pytest.mark.parametrize(
    "run_name",
    ["/tmp/elsewhere/run", "../../etc/x", "..", ".", "", "a/../../b", "x" * 300],
)
def test_every_file_stays_inside_the_directory_whatever_the_run_name(
    tmp_path, run_name
):
    directory = tmp_path / "runs"
    backend = JsonlBackend(directory=directory)
    backend.lerax_on_training_start(run_name, {})
    backend.lerax_close()
    (written,) = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written.parent == directory
    assert len(written.name) <= MAX_NAME + len(".jsonl")
    assert json.loads(written.read_text())["run"] == run_name
    assert not Path("/tmp/elsewhere").exists()
