"""Tests of lerax-tensorboard against the installed distribution.

Event files are read back with TensorBoard's own reader and served by a real
TensorBoard server; what they hold is compared with what training sent, as seen by
a recording backend that runs beside the TensorBoard backend.
"""

import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.monitoring
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from lerax.algorithm import PPO
from lerax.callback import LoggingCallback, make
from lerax.env.classic_control import CartPole
from lerax.plugin import get_registry
from lerax.policy import MLPActorCriticPolicy
from lerax.testing import RecordingBackend, check_plugin
from lerax_tensorboard import HYPERPARAMETERS_TAG, TensorBoardBackend

PLUGIN_DIR = Path(__file__).resolve().parents[1]
ITERATIONS = 4


def tiny_ppo() -> PPO:
    return PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)


def train(callback: Any, iterations: int = ITERATIONS) -> PPO:
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = tiny_ppo()
    trained = algo.learn(
        env,
        policy,
        iterations * algo.steps_per_iteration,
        key=jax.random.key(1),
        callback=callback,
    )
    jax.block_until_ready(trained)
    return algo


def read_events(directory: Path) -> EventAccumulator:
    accumulator = EventAccumulator(
        str(directory),
        size_guidance={"scalars": 0, "tensors": 0},  # 0: keep all
    )
    accumulator.Reload()
    return accumulator


def hparams_data(accumulator: EventAccumulator) -> dict[str, Any]:
    try:
        contents = accumulator.PluginTagToContent("hparams")
    except KeyError:  # no hparams data (yet)
        return {}
    return {
        tag: plugin_data_pb2.HParamsPluginData.FromString(content)
        for tag, content in contents.items()
    }


def session_status(accumulator: EventAccumulator) -> str:
    end = hparams_data(accumulator)["_hparams_/session_end_info"].session_end_info
    return api_pb2.Status.Name(end.status)


def assert_same_scalars(accumulator: EventAccumulator, sent) -> None:
    """Every metric sent is a scalar with the same steps and (float32) values."""
    names = {name for _, metrics in sent for name in metrics}
    assert set(accumulator.Tags()["scalars"]) == names
    for name in sorted(names):
        expected = [(step, metrics[name]) for step, metrics in sent if name in metrics]
        events = accumulator.Scalars(name)
        assert [e.step for e in events] == [step for step, _ in expected], name
        np.testing.assert_array_equal(  # NaN compares equal to NaN here
            np.float32([e.value for e in events]),
            np.float32([value for _, value in expected]),
            err_msg=name,
        )


@dataclass
class Trained:
    logdir: Path
    run_dir: Path
    recorder: RecordingBackend
    steps_per_iteration: int


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    """One tiny training through `learn(callback=[make("tensorboard", ...), ...])`.

    `flush_secs` is long, so only the flushes at training end and close (done by
    the LoggingCallback that `learn` builds) can have put the data on disk.
    """
    logdir = tmp_path_factory.mktemp("tensorboard")
    recorder = RecordingBackend()
    backend = make("tensorboard", log_dir=logdir / "ppo", flush_secs=600)
    algo = train([backend, recorder])
    return Trained(logdir, logdir / "ppo", recorder, algo.steps_per_iteration)


def test_conformance(tmp_path):
    report = check_plugin(
        "tensorboard", options={"tensorboard": {"log_dir": tmp_path / "conformance"}}
    )
    assert any(line.startswith("tensorboard:") for line in report.checked)
    events = read_events(tmp_path / "conformance")
    assert len(events.Scalars("episode/return")) == 3  # the kit trains 3 iterations
    assert session_status(events) == "STATUS_SUCCESS"


def test_discovered_and_importable_from_lerax_callback():
    info = get_registry().plugins["tensorboard"]
    assert info.distribution == "lerax-tensorboard"
    assert info.status == "ok"
    assert [r.name for r in info.registrations] == ["tensorboard"]
    from lerax.callback import TensorBoardBackend as exported

    assert exported is TensorBoardBackend


def test_importing_the_plugin_stays_light():
    heavy = ["tensorboardX", "tensorboard", "numpy", "jax", "rich", "wandb"]
    code = "import sys, lerax_tensorboard; print(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert "lerax_tensorboard" in loaded
    assert not {name for name in loaded if name.split(".")[0] in heavy}
    assert "lerax.callback" not in loaded


def test_scalars_match_what_training_sent(trained):
    sent = trained.recorder.iterations
    expected_steps = [trained.steps_per_iteration * (i + 1) for i in range(ITERATIONS)]
    assert [step for step, _ in sent] == expected_steps
    assert "episode/return" in sent[0][1]
    assert_same_scalars(read_events(trained.run_dir), sent)


def test_training_end_flushes_before_close(tmp_path):
    backend = TensorBoardBackend(tmp_path, flush_secs=600)
    recorder = RecordingBackend()
    logger = LoggingCallback([backend, recorder])  # not closed at training end
    try:
        train(logger, iterations=2)
        # Backends run on a background thread: wait (bounded) for the end event.
        deadline = time.monotonic() + 30
        while not recorder.ends or "_hparams_/session_end_info" not in hparams_data(
            events := read_events(tmp_path)
        ):
            assert time.monotonic() < deadline, "training end was not flushed"
            time.sleep(0.1)
        assert recorder.ends == [(recorder.iterations[-1][0], "completed")]
        assert_same_scalars(events, recorder.iterations)  # the file is still open
        assert session_status(events) == "STATUS_SUCCESS"
    finally:
        logger.close()


def test_hyperparameters_are_readable(trained):
    events = read_events(trained.run_dir)
    sent = trained.recorder.hyperparameters
    assert sent["algorithm/num_envs"] == 2  # the recorder saw the real run
    start = hparams_data(events)["_hparams_/session_start_info"].session_start_info
    assert set(start.hparams) == set(sent)
    for name, value in sent.items():
        stored = start.hparams[name]
        if isinstance(value, bool):
            assert stored.WhichOneof("kind") == "bool_value", name
            assert stored.bool_value == value, name
        elif isinstance(value, int | float):
            assert stored.number_value == pytest.approx(value), name
        else:
            assert stored.string_value == str(value), name
    assert session_status(events) == "STATUS_SUCCESS"
    (table_event,) = events.Tensors(f"{HYPERPARAMETERS_TAG}/text_summary")
    table = table_event.tensor_proto.string_val[0].decode()
    for name, value in sent.items():
        assert f"| {name} | {value} |" in table


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_tensorboard_server_serves_the_return_curve(trained):
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            f"--logdir={trained.logdir}",
            "--host=127.0.0.1",
            f"--port={port}",
            "--load_fast=false",
            "--reload_interval=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    base = f"http://127.0.0.1:{port}"

    def get(path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        )
        with direct.open(request, timeout=10) as response:
            return json.loads(response.read())

    try:
        tags, deadline = {}, time.monotonic() + 120
        while "episode/return" not in tags.get("ppo", {}):
            assert server.poll() is None, f"tensorboard exited: {server.stdout.read()}"
            assert time.monotonic() < deadline, f"no episode/return served: {tags}"
            time.sleep(0.5)
            try:
                tags = get("/data/plugin/scalars/tags")
            except OSError:  # not listening yet
                continue
        served = get("/data/plugin/scalars/scalars?run=ppo&tag=episode/return")
        experiment = get("/data/plugin/hparams/experiment", {"experimentName": ""})
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    sent = [(s, m["episode/return"]) for s, m in trained.recorder.iterations]
    assert [step for _, step, _ in served] == [step for step, _ in sent]
    np.testing.assert_array_equal(
        np.float32([float(value) for _, _, value in served]),  # NaN comes as "NaN"
        np.float32([value for _, value in sent]),
    )
    hparams = {info["name"] for info in experiment["hparamInfos"]}
    assert hparams == set(trained.recorder.hyperparameters)
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert "episode/return" in metrics


def test_learn_by_name_writes_to_runs_run_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recorder = RecordingBackend()
    algo = train(["tensorboard", recorder], iterations=2)
    assert recorder.run_name is not None
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [recorder.run_name]
    events = read_events(tmp_path / "runs" / recorder.run_name)
    steps = [e.step for e in events.Scalars("episode/return")]
    assert steps == [algo.steps_per_iteration, 2 * algo.steps_per_iteration]
    assert session_status(events) == "STATUS_SUCCESS"


def test_non_finite_values_are_logged_as_such(tmp_path, caplog):
    backend = TensorBoardBackend(tmp_path)
    backend.lerax_on_training_start("run", {"a": 1})
    metrics = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "x": 1.5}
    backend.lerax_on_iteration(7, metrics)
    backend.lerax_on_iteration(9, {"nan": 2.0})
    backend.lerax_close()
    backend.lerax_close()  # idempotent
    events = read_events(tmp_path)
    assert math.isnan(events.Scalars("nan")[0].value)
    assert [e.step for e in events.Scalars("nan")] == [7, 9]
    assert events.Scalars("inf")[0].value == math.inf
    assert events.Scalars("-inf")[0].value == -math.inf
    assert events.Scalars("x")[0].value == 1.5
    assert session_status(events) == "STATUS_FAILURE"  # closed before training end
    assert not [r for r in caplog.records if r.name.startswith("tensorboardX")]


def test_each_default_run_gets_its_own_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backend = TensorBoardBackend()
    assert backend.log_dir is None
    assert not (tmp_path / "runs").exists()  # nothing created before a run starts
    for run in ("first", "second"):
        backend.lerax_on_training_start(run, {})
        assert backend.log_dir == tmp_path / "runs" / run
        backend.lerax_on_iteration(1, {"x": float(len(run))})
    backend.lerax_on_training_end(1, "completed")
    backend.lerax_close()
    first, second = (read_events(tmp_path / "runs" / r) for r in ("first", "second"))
    assert [e.value for e in first.Scalars("x")] == [5.0]
    assert [e.value for e in second.Scalars("x")] == [6.0]
    assert session_status(first) == "STATUS_FAILURE"  # replaced before its end
    assert session_status(second) == "STATUS_SUCCESS"


def test_unwritable_log_dir_fails_at_construction(tmp_path):
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a directory")  # fails even for root, unlike chmod
    with pytest.raises(OSError, match=str(blocker / "tb")):
        make("tensorboard", log_dir=blocker / "tb")
    with pytest.raises(OSError, match=str(blocker)):
        TensorBoardBackend(blocker)


def test_unwritable_default_dir_fails_before_compiling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("a file where the runs directory should be")
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = tiny_ppo()
    traced: list[str] = []

    def listen(event: str, duration: float, **kwargs: Any) -> None:
        traced.append(str(kwargs.get("fun_name", "")))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        with pytest.raises(OSError, match=str(tmp_path / "runs")):
            algo.learn(env, policy, 64, key=jax.random.key(1), callback="tensorboard")
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert not [name for name in traced if "run_loop" in name]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"flush_secs": -1}, ValueError),
        ({"flush_secs": math.nan}, ValueError),
        ({"flush_secs": "5"}, TypeError),
        ({"flush_secs": True}, TypeError),
        ({"log_dir": 3}, TypeError),
        ({"log_dir": "gs://bucket/run"}, ValueError),
    ],
)
def test_bad_options_fail_naming_the_value(options, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as raised:
        TensorBoardBackend(**options)
    (value,) = options.values()
    assert repr(value) in str(raised.value) or str(value) in str(raised.value)


def test_plot_script_draws_the_return_curve(trained, tmp_path):
    script = PLUGIN_DIR / "scripts" / "plot_return.py"
    output = tmp_path / "return.png"
    subprocess.run(
        [sys.executable, str(script), str(trained.logdir), "-o", str(output)],
        check=True,
        capture_output=True,
    )
    assert output.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    spec = importlib.util.spec_from_file_location("plot_return", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    curves = module.read_curves(trained.logdir)
    expected = [  # the default scalar is the moving average
        (step, metrics["episode/return_ema"])
        for step, metrics in trained.recorder.iterations
        if math.isfinite(metrics["episode/return_ema"])
    ]
    assert list(curves) == ["ppo"]
    assert [step for step, _ in curves["ppo"]] == [step for step, _ in expected]
    np.testing.assert_array_equal(
        np.float32([v for _, v in curves["ppo"]]), np.float32([v for _, v in expected])
    )


# Far more than can run before the SIGINT arrives (the training is interrupted
# within ~64 iterations of it): 400 once finished first on a fast run.
INTERRUPTED_ITERATIONS = 20_000
INTERRUPTED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    from lerax.algorithm import PPO
    from lerax.callback import LoggingCallback, make
    from lerax.env.classic_control import CartPole
    from lerax.plugin import AbstractLoggingBackend
    from lerax.policy import MLPActorCriticPolicy

    log_dir, record, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class JsonRecorder(AbstractLoggingBackend):
        def __init__(self, path):
            self.file = open(path, "a")
        def write(self, record):
            self.file.write(json.dumps(record) + "\\n")
            self.file.flush()
        def lerax_on_training_start(self, run_name, hyperparameters):
            pass
        def lerax_on_iteration(self, step, metrics):
            self.write({"step": step, "metrics": metrics})
        def lerax_close(self):
            self.write({"closed": True})

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    # No close() and no context manager: the dispatcher's atexit hook must do it.
    logger = LoggingCallback(
        [make("tensorboard", log_dir=log_dir, flush_secs=0), JsonRecorder(record)]
    )
    try:
        algo.learn(
            env, policy, iterations * algo.steps_per_iteration,
            key=jax.random.key(1), callback=logger,
        )
    except KeyboardInterrupt as error:  # left uncaught: reported, then re-raised
        print(f"interrupted by {type(error).__name__}", flush=True)
        raise
    print("learn returned", flush=True)
    """
)


@dataclass
class Interrupted:
    returncode: int
    output: str
    readable_at_signal: list[tuple[int, float]]
    recorded_at_signal: int
    records: list[dict[str, Any]]
    events: EventAccumulator


def _returns(accumulator: EventAccumulator) -> list[tuple[int, float]]:
    if "episode/return" not in accumulator.Tags()["scalars"]:
        return []
    return [(e.step, e.value) for e in accumulator.Scalars("episode/return")]


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Interrupted:
    """A training in a subprocess, sent SIGINT once its event file holds scalars."""
    tmp = tmp_path_factory.mktemp("interrupted")
    script, log_dir, record = tmp / "train.py", tmp / "tb", tmp / "record.jsonl"
    script.write_text(INTERRUPTED_SCRIPT)
    arguments = [log_dir, record, INTERRUPTED_ITERATIONS]
    process = subprocess.Popen(
        [sys.executable, str(script), *map(str, arguments)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 180
        readable: list[tuple[int, float]] = []
        while len(readable) < 3:
            if process.poll() is not None:
                pytest.fail(f"training exited early: {process.communicate()[0]}")
            assert time.monotonic() < deadline, "no scalars were flushed in time"
            time.sleep(0.1)
            if log_dir.is_dir():
                readable = _returns(read_events(log_dir))
        recorded = len(record.read_text().splitlines())
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert recorded < INTERRUPTED_ITERATIONS, (
        "training finished before it was interrupted; raise INTERRUPTED_ITERATIONS"
    )
    records = [json.loads(line) for line in record.read_text().splitlines()]
    return Interrupted(
        process.returncode, output, readable, recorded, records, read_events(log_dir)
    )


def test_interrupt_keeps_every_logged_iteration(interrupted):
    # The interrupt reached the script as an uncaught KeyboardInterrupt (or, with
    # a core that stops training on Ctrl-C, its subclass TrainingInterrupted).
    assert interrupted.returncode != 0, interrupted.output
    assert "interrupted by" in interrupted.output, interrupted.output
    assert "learn returned" not in interrupted.output
    # The dispatcher's atexit hook delivered what was queued, then closed backends.
    assert interrupted.records[-1] == {"closed": True}
    sent = [(r["step"], r["metrics"]) for r in interrupted.records[:-1]]
    assert len(sent) >= interrupted.recorded_at_signal
    assert_same_scalars(interrupted.events, sent)
    after = dict(_returns(interrupted.events))
    for step, value in interrupted.readable_at_signal:
        np.testing.assert_array_equal(np.float32(after[step]), np.float32(value))
    assert session_status(interrupted.events) in {"STATUS_SUCCESS", "STATUS_FAILURE"}


def test_interrupt_stops_training_early(interrupted):
    import lerax.algorithm

    if not hasattr(lerax.algorithm, "TrainingInterrupted"):
        pytest.xfail(
            "core: SIGINT only surfaces after the jitted learn() returns, so Ctrl-C "
            "does not stop training early"
        )
    steps = [r["step"] for r in interrupted.records if "step" in r]
    assert len(steps) < INTERRUPTED_ITERATIONS
    assert "interrupted by TrainingInterrupted" in interrupted.output


HOSTILE_NAMES = [
    "ABSOLUTE",  # replaced by an absolute path outside the working directory
    "..",
    ".",
    "../../x",
    "../runs/../../y",
    "a/b",
    "a\\..\\..\\b",
    "",
    " . ",
    "nul\x00and\nnewline",
    "r" * 300,
    "é" * 300,
]


@pytest.mark.parametrize("run_name", HOSTILE_NAMES)
def test_any_run_name_writes_only_inside_runs(run_name, tmp_path, monkeypatch):
    """Whatever run name arrives, every file stays inside `runs/`, readable there."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    if run_name == "ABSOLUTE":
        run_name = str(tmp_path / "elsewhere" / "run")
    backend = TensorBoardBackend()
    backend.lerax_on_training_start(run_name, {"algorithm/x": 1})
    backend.lerax_on_iteration(32, {"episode/return": 9.0})
    backend.lerax_on_training_end(32, "completed")
    backend.lerax_close()

    runs = work / "runs"
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(runs)}
    assert outside == {tmp_path / "a", tmp_path / "a" / "b", work}, outside
    (directory,) = runs.iterdir()
    assert directory == backend.log_dir
    assert len(directory.name.encode()) <= 128
    events = read_events(directory)
    assert [(e.step, e.value) for e in events.Scalars("episode/return")] == [(32, 9.0)]
    assert session_status(events) == "STATUS_SUCCESS"


def test_long_run_names_stay_apart_and_plain_names_are_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backend = TensorBoardBackend()
    names = ["x" * 300 + "1", "x" * 300 + "2", "PPO-CartPole-20250101-120000-1.0"]
    directories = []
    for name in names:
        backend.lerax_on_training_start(name, {})
        directories.append(backend.log_dir)
    backend.lerax_close()
    assert len(set(directories)) == 3
    assert directories[2] == tmp_path / "runs" / names[2]


def test_many_members_each_write_their_own_directory_and_the_aggregate(tmp_path):
    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.logging import LoggingCallback
    from lerax.policy import MLPActorCriticPolicy

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    rates = [3e-2, 3e-3, 3e-4]
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1,
               learning_rate=rates)  # fmt: skip
    keys = jax.random.split(jax.random.key(1), 3)
    backend = TensorBoardBackend(tmp_path / "grid")
    with LoggingCallback([backend]) as logger:
        algo.learn(env, policy, 4 * algo.steps_per_iteration, key=keys,
                   callback=logger)  # fmt: skip

    found = sorted(p.name for p in (tmp_path / "grid").iterdir())
    assert found == ["aggregate", "member-0", "member-1", "member-2"]
    steps = [32, 64, 96, 128]
    losses = []
    for i, rate in enumerate(rates):
        events = read_events(tmp_path / "grid" / f"member-{i}")
        lr = events.Scalars("train/learning_rate")
        assert [e.step for e in lr] == steps  # only its own rows, increasing
        assert lr[0].value == pytest.approx(rate, rel=1e-6)  # its own rate
        start = hparams_data(events)["_hparams_/session_start_info"]
        stored = start.session_start_info.hparams["algorithm/learning_rate"]
        assert stored.number_value == pytest.approx(rate)
        assert "episode/return_std" not in events.Tags()["scalars"]
        losses.append([e.value for e in events.Scalars("train/value_loss")])
    assert len({tuple(curve) for curve in losses}) == 3  # the curves differ
    aggregate = read_events(tmp_path / "grid" / "aggregate")
    mean = aggregate.Scalars("train/value_loss")
    assert [e.step for e in mean] == steps
    for event, *values in zip(mean, *losses, strict=True):
        assert event.value == pytest.approx(np.mean(values), rel=1e-5)
    counts = [
        [e.value for e in read_events(tmp_path / "grid" / f"member-{i}").Scalars(
            "episode/count")]
        for i in range(3)
    ]  # fmt: skip
    high = aggregate.Scalars("episode/count_max")
    assert [e.value for e in high] == np.max(counts, axis=0).tolist()
