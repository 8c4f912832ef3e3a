"""Tests of lerax-wandb against real wandb, offline, reading back what it wrote.

wandb keeps each offline run in `<dir>/wandb/offline-run-*/run-<id>.wandb`, a
log of protobuf `Record`s in the LevelDB log format (32 KiB blocks of
checksummed chunks after a 7-byte `:W&B` header). `read_run` decodes it with
wandb's own protobuf classes, so the tests check what would be uploaded by
`wandb sync`: every history row, the config, the run's name and its exit record.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
import wandb
from wandb.proto import wandb_internal_pb2

import lerax_wandb
from lerax.algorithm import PPO
from lerax.callback import make
from lerax.env.classic_control import CartPole
from lerax.plugin import reload_registry
from lerax.policy import MLPActorCriticPolicy
from lerax.testing import RecordingBackend, check_plugin
from lerax_wandb import WandbBackend

BLOCK, CHUNK_HEADER = 32 * 1024, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclasses.dataclass
class Run:
    """What one offline run recorded."""

    name: str
    project: str
    tags: list[str]
    config: dict[str, Any]
    history: list[tuple[int, dict[str, Any]]]
    exit_code: int | None  # None: the run was never finished
    group: str = ""
    job_type: str = ""


def _records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    assert struct.unpack("<HB", data[4:7]) == (0xBEE1, 0)
    records, pending, pos = [], b"", 7
    while pos + CHUNK_HEADER <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # block trailer: too short for a chunk
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        if (crc, length, kind) == (0, 0, 0):  # zero padding up to the next block
            pos += BLOCK - pos % BLOCK
            continue
        if pos + CHUNK_HEADER + length > len(data):
            break  # still being written
        chunk = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        assert zlib.crc32(bytes([kind]) + chunk) == crc, f"bad checksum at {pos}"
        pos += CHUNK_HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _value(value_json: str) -> Any:
    value = json.loads(value_json)  # accepts NaN and Infinity, as wandb writes them
    if isinstance(value, dict) and set(value) <= {"desc", "value"} and "value" in value:
        return value["value"]  # older wandb wraps config values
    return value


def read_run(run_dir: Path, timeout: float = 30.0) -> Run:
    """Decode the `run-*.wandb` log of the offline run in `run_dir`.

    wandb's service writes the log a moment after `finish()` returns, so this
    waits up to `timeout` seconds for the exit record that ends a finished run.
    """
    (path,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        records = _records(path)
        exits = [r.exit for r in records if r.HasField("exit")]
        if exits or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    (run,) = [r.run for r in records if r.HasField("run")]
    history = []
    for record in records:
        if record.HasField("history"):
            row = {
                "/".join(item.nested_key) or item.key: _value(item.value_json)
                for item in record.history.item
            }
            history.append((record.history.step.num, row))
    return Run(
        name=run.display_name,
        project=run.project,
        tags=list(run.tags),
        config={
            item.key: _value(item.value_json)
            for item in run.config.update
            if item.key != "_wandb"
        },
        history=history,
        exit_code=exits[0].exit_code if exits else None,
        group=run.run_group,
        job_type=run.job_type,
    )


def offline_runs(directory: Path) -> list[Path]:
    """The offline run folders under `directory`, oldest first."""
    return sorted((directory / "wandb").glob("offline-run-*"))


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.fixture(scope="module", autouse=True)
def stop_wandb_service():
    """Stop wandb's service process once this module is done with it."""
    yield
    wandb.teardown()


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Offline by default, with no credentials and a throwaway netrc."""
    for variable in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_SILENT", raising=False)


def tiny_training(callback: Any, iterations: int) -> int:
    """Train a tiny PPO for `iterations` iterations; return steps per iteration."""
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    algo.learn(
        env,
        policy,
        iterations * algo.steps_per_iteration,
        key=jax.random.key(1),
        callback=callback,
    )
    return algo.steps_per_iteration


def test_conformance(tmp_path):
    report = check_plugin("wandb", options={"wandb": {"dir": tmp_path}})
    assert any(line.startswith("wandb:") for line in report.checked)
    runs = [read_run(run_dir) for run_dir in offline_runs(tmp_path)]
    (single,) = [run for run in runs if not run.group]
    assert [step for step, _ in single.history] == [32, 64, 96]
    assert single.exit_code == 0
    # the kit's training of 3 members: a run each and the aggregate, one group
    grouped = [run for run in runs if run.group]
    assert sorted(run.job_type for run in grouped) == ["aggregate", *["member"] * 3]
    assert all(run.exit_code == 0 for run in grouped)


def test_discovered_and_importable_from_lerax_callback():
    info = reload_registry().plugins["wandb"]
    assert info.distribution == "lerax-wandb"
    assert [r.name for r in info.registrations] == ["wandb"]
    from lerax.callback import WandbBackend as exported

    assert exported is WandbBackend


def test_learn_by_name_logs_every_iteration_at_its_env_step(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "runs"))  # made when needed
    recorder = RecordingBackend()
    steps_per_iteration = tiny_training(["wandb", recorder], iterations=4)

    (run_dir,) = offline_runs(tmp_path / "runs")
    run = read_run(run_dir)
    assert run.exit_code == 0
    assert run.project == "lerax"
    assert run.name == recorder.run_name
    assert run.config == recorder.hyperparameters
    assert run.config["algorithm/num_envs"] == 2
    assert [step for step, _ in run.history] == [
        steps_per_iteration * (i + 1) for i in range(4)
    ]
    assert len(recorder.iterations) == 4
    for (step, row), (sent_step, sent) in zip(
        run.history, recorder.iterations, strict=True
    ):
        assert step == sent_step
        assert same(row["episode/return"], sent["episode/return"])
        assert {name for name in sent} <= set(row)
        assert all(same(row[name], value) for name, value in sent.items())
    assert any(math.isfinite(row["episode/return"]) for _, row in run.history)


def test_init_options_reach_the_run_and_non_finite_values_are_kept(tmp_path):
    # `make("wandb", name=...)` cannot work: make's own first parameter is `name`.
    backend = WandbBackend(
        project="lerax-tests",
        dir=tmp_path,
        name="custom-name",
        tags=["smoke"],
        config={"seed": 7, "algorithm/lr": "overridden"},
    )
    backend.lerax_on_training_start(
        "ignored", {"algorithm/lr": 0.001, "env/class": "X"}
    )
    run_dir = Path(backend.run.settings.sync_dir)
    values = {"a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.5}
    backend.lerax_on_iteration(7, values)
    backend.lerax_on_training_end(7, "completed")
    backend.lerax_close()

    run = read_run(run_dir)
    assert (run.project, run.name, run.tags) == (
        "lerax-tests",
        "custom-name",
        ["smoke"],
    )
    assert run.config == {"seed": 7, "algorithm/lr": 0.001, "env/class": "X"}
    ((step, row),) = run.history
    assert step == 7
    assert all(same(row[name], value) for name, value in values.items())


def test_several_runs_per_process_leave_a_run_of_your_own_alone(tmp_path):
    own = wandb.init(project="mine", name="mine", dir=tmp_path, mode="offline")
    backend = WandbBackend(dir=tmp_path)
    backend.lerax_on_training_start("first", {"algorithm/x": 1})
    backend.lerax_on_iteration(10, {"episode/return": 1.0})
    backend.lerax_on_training_end(10, "completed")
    backend.lerax_on_training_start("second", {"algorithm/x": 2})  # no close between
    backend.lerax_on_iteration(5, {"episode/return": 2.0})
    backend.lerax_close()  # before the end of training, as after an interrupt
    backend.lerax_close()
    backend.lerax_on_iteration(6, {"episode/return": 3.0})  # after close: dropped
    assert backend.run is None
    assert wandb.run is own
    own.log({"mine": 1.0}, step=1)  # still open: our runs did not finish it
    own.finish()

    runs = {run.name: run for run in map(read_run, offline_runs(tmp_path))}
    assert set(runs) == {"first", "second", "mine"}
    rows = {
        name: [(s, r.get("episode/return")) for s, r in run.history]
        for name, run in runs.items()
    }
    assert rows["first"] == [(10, 1.0)]
    assert rows["second"] == [(5, 2.0)]
    assert rows["mine"] == [(1, None)]
    assert (runs["first"].exit_code, runs["second"].exit_code) == (0, 1)
    assert runs["mine"].exit_code == 0
    assert runs["second"].config == {"algorithm/x": 2}


def start_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("lerax-wandb:")]


def test_without_a_key_it_goes_offline_and_says_why_at_each_start(
    tmp_path, monkeypatch, capfd
):
    monkeypatch.delenv("WANDB_MODE")
    for name in ("one", "two"):
        backend = WandbBackend(dir=tmp_path)
        backend.lerax_on_training_start(name, {})
        assert backend.run.settings.mode == "offline"
        backend.lerax_on_iteration(1, {"episode/return": 0.5})
        backend.lerax_close()
    lines = start_lines(capfd.readouterr().err)
    folders = offline_runs(tmp_path)
    assert len(lines) == 2 == len(folders), lines
    # Folders sort by start second, then by random run id: match them by name.
    by_name = {read_run(folder).name: folder for folder in folders}
    for line, name in zip(lines, ("one", "two"), strict=True):
        folder = by_name[name]
        assert f"run {name!r} is logged offline in {folder}" in line
        assert "no W&B API key" in line
        assert line.endswith(f"upload it with `wandb sync {folder}`")


def test_a_wandb_only_run_prints_one_start_line_naming_its_folder(tmp_path, capfd):
    """The line names the run's own offline folder, which holds what it logged."""
    backend = make("wandb", dir=tmp_path)
    assert isinstance(backend, WandbBackend)
    tiny_training(backend, iterations=2)
    captured = capfd.readouterr()
    (line,) = start_lines(captured.err)
    assert "lerax-wandb" not in captured.out
    (folder,) = offline_runs(tmp_path)
    run = read_run(folder)
    assert line == (
        f"lerax-wandb: run {run.name!r} is logged offline in {folder}; "
        f"upload it with `wandb sync {folder}`"
    )
    assert len(run.history) == 2 and run.exit_code == 0


@pytest.mark.parametrize(("quiet", "silent"), [(True, None), (None, "true")])
def test_quiet_or_wandb_silent_keeps_the_start_line_quiet(
    quiet, silent, tmp_path, monkeypatch, capfd
):
    if silent is not None:
        monkeypatch.setenv("WANDB_SILENT", silent)
    backend = WandbBackend(dir=tmp_path, quiet=quiet)
    backend.lerax_on_training_start("quiet", {})
    backend.lerax_close()
    assert "lerax-wandb" not in capfd.readouterr().err
    assert len(offline_runs(tmp_path)) == 1


def test_quiet_false_prints_despite_wandb_silent(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WANDB_SILENT", "true")
    backend = WandbBackend(dir=tmp_path, quiet=False)
    backend.lerax_on_training_start("loud", {})
    backend.lerax_close()
    assert len(start_lines(capfd.readouterr().err)) == 1


def test_unreachable_server_goes_offline_without_waiting(tmp_path, monkeypatch, capfd):
    with socket.socket() as closed:  # a port nobody listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    backend = WandbBackend(dir=tmp_path)
    started = time.perf_counter()
    backend.lerax_on_training_start("no-network", {})
    elapsed = time.perf_counter() - started
    assert backend.run.settings.mode == "offline"
    backend.lerax_on_iteration(3, {"episode/return": 1.0})
    backend.lerax_close()
    assert elapsed < lerax_wandb.PROBE_TIMEOUT + 10
    assert f"cannot reach the W&B server 127.0.0.1:{port}" in capfd.readouterr().err
    (run_dir,) = offline_runs(tmp_path)
    assert [step for step, _ in read_run(run_dir).history] == [3]


def test_disabled_mode_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    backend = WandbBackend(dir=tmp_path)
    backend.lerax_on_training_start("off", {"algorithm/x": 1})
    backend.lerax_on_iteration(1, {"episode/return": 1.0})
    backend.lerax_close()
    assert not (tmp_path / "wandb").exists()


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"mode": "sometimes"}, ValueError, r"mode='sometimes'.*'offline'"),
        ({"project": ""}, ValueError, r"project must be a non-empty string"),
        ({"projet": "x"}, TypeError, r"'projet' is not a wandb.init option"),
        ({"config": [1, 2]}, TypeError, r"config must be a mapping"),
        ({"settings": {"console": "loud"}}, ValueError, r"not valid wandb.Settings"),
        ({"settings": 3}, TypeError, r"settings must be a wandb.Settings"),
        ({"quiet": "yes"}, TypeError, r"quiet must be True"),
    ],
)
def test_bad_options_fail_at_construction(options, error, match):
    with pytest.raises(error, match=match):
        WandbBackend(**options)


def test_bad_mode_variable_and_unwritable_dir_fail_at_construction(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WANDB_MODE", "maybe")
    with pytest.raises(ValueError, match=r"WANDB_MODE='maybe'"):
        WandbBackend()
    monkeypatch.setenv("WANDB_MODE", "offline")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError, match="a-file"):
        WandbBackend(dir=blocker / "runs")


def test_importing_the_plugin_does_not_import_wandb():
    code = (
        "import sys, lerax_wandb; from lerax.plugin import get_registry; "
        "get_registry(); print(sorted({'wandb', 'jax', 'rich'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


CTRL_C_DURING_TRAINING = """
import os, signal, time

import jax

from lerax.algorithm import PPO
from lerax.callback import AbstractLoggingBackend, LoggingCallback, make
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy


class CtrlC(AbstractLoggingBackend):
    # Presses Ctrl-C at the second iteration and is slow, so rows stay queued.
    def lerax_on_training_start(self, run_name, hyperparameters):
        pass

    def lerax_on_iteration(self, step, metrics):
        time.sleep(0.1)
        if step == 64:
            os.kill(os.getpid(), signal.SIGINT)

    def lerax_close(self):
        pass


env = CartPole()
policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
logger = LoggingCallback([CtrlC(), make("wandb")])
algo.learn(env, policy, 6 * algo.steps_per_iteration, key=jax.random.key(1),
           callback=logger)
time.sleep(120)  # whatever comes next; the interrupt lands before close()
logger.close()
print("NOT INTERRUPTED")
"""

CTRL_C_WHILE_CLOSING = """
import os, signal, time

from lerax.plugin import AbstractLoggingBackend
from lerax.logging import BackendDispatcher
from lerax_wandb import WandbBackend


class CtrlC(AbstractLoggingBackend):
    # Presses Ctrl-C at the second iteration, while close() waits for the rows.
    def lerax_on_training_start(self, run_name, hyperparameters):
        pass

    def lerax_on_iteration(self, step, metrics):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)  # the rest stays queued while the process exits

    def lerax_close(self):
        pass


dispatcher = BackendDispatcher([WandbBackend(), CtrlC()])
dispatcher.submit("lerax_on_training_start", run_name="closing", hyperparameters={})
for step in range(1, 7):
    dispatcher.submit("lerax_on_iteration", step=step, metrics={"episode/return": step})
dispatcher.submit("lerax_on_training_end", step=6, reason="interrupted")
dispatcher.close()
print("NOT INTERRUPTED")
"""


def run_interrupted(script: str, directory: Path) -> Run:
    """Run `script` with offline W&B in `directory`; check Ctrl-C stopped it."""
    path = directory / "interrupted.py"
    path.write_text(textwrap.dedent(script))
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(directory))
    done = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr, done.stderr
    assert "NOT INTERRUPTED" not in done.stdout
    assert "raised in" not in done.stderr, done.stderr  # no backend error at exit
    (run_dir,) = offline_runs(directory)
    return read_run(run_dir)


def test_ctrl_c_during_training_keeps_every_row_and_finishes_the_run(tmp_path):
    run = run_interrupted(CTRL_C_DURING_TRAINING, tmp_path)
    # The jitted loop runs to its end before Python sees the interrupt; the rows
    # still queued then are delivered at exit, and the run is finished.
    assert [step for step, _ in run.history] == [32 * (i + 1) for i in range(6)]
    assert run.exit_code == 0


def test_ctrl_c_while_closing_still_finishes_the_run(tmp_path):
    run = run_interrupted(CTRL_C_WHILE_CLOSING, tmp_path)
    # Lerax's own close was cut short; the backend's exit handler finished the
    # run, marked as not completed (wandb's teardown alone would record 255).
    assert run.exit_code == 1, "the run was not finished by lerax-wandb at exit"
    steps = [step for step, _ in run.history]
    assert steps[:2] == [1, 2], "rows logged before Ctrl-C were lost"
    assert steps == list(range(1, len(steps) + 1))
    assert [row["episode/return"] for _, row in run.history] == steps


HOSTILE_NAMES = ["ABSOLUTE", "..", ".", "../../x", "a/b", "", "nul\x00\n", "r" * 300]


@pytest.mark.parametrize("run_name", HOSTILE_NAMES)
def test_any_run_name_writes_only_inside_the_wandb_folder(
    run_name, tmp_path, monkeypatch
):
    """The run name is the W&B run's display name, never a path: every file goes to
    `<working directory>/wandb/`, and the run reads back with its rows."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    if run_name == "ABSOLUTE":
        run_name = str(tmp_path / "elsewhere" / "run")
    backend = WandbBackend(quiet=True)
    backend.lerax_on_training_start(run_name, {"algorithm/x": 1})
    backend.lerax_on_iteration(32, {"episode/return": 9.0})
    backend.lerax_on_training_end(32, "completed")
    backend.lerax_close()

    folder = work / "wandb"
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(folder)}
    assert outside == {tmp_path / "netrc", tmp_path / "a", tmp_path / "a" / "b", work}
    (run_dir,) = offline_runs(work)
    run = read_run(run_dir)
    assert [(step, row["episode/return"]) for step, row in run.history] == [(32, 9.0)]
    assert run.exit_code == 0


def test_each_member_is_a_run_in_one_group_with_its_own_values(tmp_path):
    from lerax.logging import LoggingCallback

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    rates = [3e-3, 1e-3, 3e-4]
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1,
               learning_rate=rates)  # fmt: skip
    keys = jax.random.split(jax.random.key(1), 3)
    with LoggingCallback([WandbBackend(dir=tmp_path)], name="grid") as logger:
        algo.learn(env, policy, 3 * algo.steps_per_iteration, key=keys,
                   callback=logger)  # fmt: skip

    runs = {run.name: run for run in map(read_run, offline_runs(tmp_path))}
    assert sorted(runs) == [
        "grid/aggregate", "grid/member-0", "grid/member-1", "grid/member-2"
    ]  # fmt: skip
    assert {run.group for run in runs.values()} == {"grid"}
    steps = [32, 64, 96]
    for i, rate in enumerate(rates):
        member = runs[f"grid/member-{i}"]
        assert member.job_type == "member" and member.exit_code == 0
        assert member.config["algorithm/learning_rate"] == pytest.approx(rate)
        assert member.config["run/member"] == i
        assert member.config["run/group"] == "grid"
        assert [step for step, _ in member.history] == steps
        assert "episode/return_std" not in member.history[0][1]
    histories = [
        [row["train/learning_rate"] for _, row in runs[f"grid/member-{i}"].history]
        for i in range(3)
    ]
    assert len({tuple(h) for h in histories}) == 3  # each member its own curve
    aggregate = runs["grid/aggregate"]
    assert aggregate.job_type == "aggregate" and aggregate.exit_code == 0
    assert aggregate.config["run/members"] == 3
    assert [step for step, _ in aggregate.history] == steps
    for step, row in aggregate.history:
        values = [runs[f"grid/member-{i}"].history[step // 32 - 1][1] for i in range(3)]
        rates_now = [v["train/learning_rate"] for v in values]
        assert row["train/learning_rate"] == pytest.approx(np.mean(rates_now))
        counts = [v["episode/count"] for v in values]
        assert row["episode/count_min"] == min(counts)
        assert row["episode/count_max"] == max(counts)
        assert row["episode/count_std"] == pytest.approx(np.std(counts), rel=1e-5)
        assert row["members/running"] == 3


SIGTERM_WHILE_CLOSING = """
import time
import jax
from lerax.algorithm import PPO, TrainingInterrupted
from lerax.callback import AbstractLoggingBackend, LoggingCallback, make
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy


class Slow(AbstractLoggingBackend):
    # 50 ms a row, so that rows are still queued when the second SIGTERM comes.
    def lerax_on_training_start(self, run_name, hyperparameters):
        pass

    def lerax_on_iteration(self, step, metrics):
        time.sleep(0.05)
        with open("slow.txt", "a") as file:
            file.write(f"{step}\\n")

    def lerax_close(self):
        pass


env = CartPole()
policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
logger = LoggingCallback([Slow(), make("wandb"), make("tensorboard", log_dir="runs")])
try:
    algo.learn(env, policy, 2**24, key=jax.random.key(1), callback=logger)
except TrainingInterrupted as stop:
    print("RESULT", type(stop.policy).__name__, flush=True)
finally:
    logger.close()  # the second SIGTERM comes while this waits for Slow
"""


@pytest.mark.slow
def test_sigterm_twice_finishes_the_wandb_run_and_the_tensorboard_session(tmp_path):
    import signal

    pytest.importorskip("lerax_tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_WHILE_CLOSING],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    slow = tmp_path / "slow.txt"
    deadline = time.monotonic() + 300
    while not slow.exists() or slow.read_text().count("\n") < 5:
        assert time.monotonic() < deadline and process.poll() is None, (
            process.communicate()
        )
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # what a scheduler sends first
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)  # again, while the backends close
    out, err = process.communicate(timeout=240)
    assert "RESULT MLPActorCriticPolicy" in out, (out, err)

    (run_dir,) = offline_runs(tmp_path)
    run = read_run(run_dir)
    assert run.exit_code == 1, "the W&B run was not finished (interrupted: 1)"
    steps = [step for step, _ in run.history]
    (board,) = (tmp_path / "runs").iterdir()
    events = EventAccumulator(str(board), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("episode/count")] == steps
    assert "_hparams_/session_end_info" in events.PluginTagToContent("hparams")
    assert slow.read_text().split() == [str(step) for step in steps]


def test_a_resumed_run_continues_the_wandb_run_by_id(tmp_path, monkeypatch):
    import shutil

    from lerax.callback import CheckpointCallback

    monkeypatch.chdir(tmp_path)
    checkpoints = tmp_path / "checkpoints"
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    steps = algo.steps_per_iteration

    def learn(resume_from=None):
        algo.learn(
            env,
            policy,
            6 * steps,
            key=jax.random.key(1),
            callback=[
                WandbBackend(quiet=True, dir=str(tmp_path)),
                CheckpointCallback(checkpoints, every=3, keep=None),
            ],
            resume_from=resume_from,
        )

    learn()
    shutil.rmtree(checkpoints / "6")  # the crash: the latest checkpoint is at 3
    learn(resume_from=checkpoints)
    first, resumed = offline_runs(tmp_path)
    run_id = first.name.rpartition("-")[2]
    # wandb adds "-1" to a folder name already taken (both started in one second)
    assert re.fullmatch(rf"offline-run-\d+_\d+-{run_id}(-\d+)?", resumed.name), (
        "the resumed run has the same id"
    )
    original, continued = read_run(first), read_run(resumed)
    assert continued.name == original.name
    logged = [step for step, _ in continued.history]
    assert logged == [i * steps for i in range(3, 7)]  # from the checkpoint on
    assert len(set(logged)) == len(logged)
