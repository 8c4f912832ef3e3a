"""Tests of lerax-console, rendering for real: rich recording consoles, a pseudo-terminal."""

import io
import math
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest
from rich.console import Console

from lerax.algorithm import PPO
from lerax.callback import AbstractLoggingBackend, LoggingCallback, make
from lerax.env.classic_control import CartPole
from lerax.plugin import get_registry
from lerax.policy import MLPActorCriticPolicy
from lerax.testing import check_plugin
from lerax_console import TOTAL_TIMESTEPS_KEY, ConsoleBackend, format_value

PLUGIN_DIR = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")
METRICS = {
    "episode/return": 20.0,
    "episode/length": 20.0,
    "episode/return_ema": 18.0,
    "episode/length_ema": 18.0,
    "train/policy_loss": -0.0123,
    "train/learning_rate": 2.5e-4,
    "time/steps_per_second": 12345.0,
}


def terminal(width: int = 100) -> Console:
    """A recording console that believes it is an interactive terminal."""
    return Console(file=io.StringIO(), record=True, force_terminal=True, width=width)


def wait_for(console: Console, *needles: str, timeout: float = 10.0) -> str:
    """The recorded text once it contains every needle (the display refreshes on
    its own thread); fails with what was drawn otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        text = console.export_text(clear=False)
        if all(needle in text for needle in needles):
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"display never showed {needles}; it showed:\n{text}")
        time.sleep(0.01)


def frames(text: str, run_name: str) -> list[str]:
    """Split recorded live output into frames: each starts with the run name."""
    return [run_name + part for part in text.split(run_name)[1:]]


def row(frame: str, metric: str) -> str:
    match = re.search(rf"(?<!\S){re.escape(metric)}\s+(\S+)", frame)
    assert match, f"no row {metric!r} in frame:\n{frame}"
    return match.group(1)


def plain_environment(monkeypatch) -> None:
    """Make rich's terminal detection depend on the stream alone."""
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(variable, raising=False)


# ----------------------------------------------------------------- the plugin


def test_conformance():
    console = terminal()
    report = check_plugin(
        "console",
        options={"console": {"console": console, "refresh_per_second": 20}},
    )
    assert any(line.startswith("console:") for line in report.checked)
    # the live display ran under the jitted training and ended full
    final = frames(console.export_text(clear=False), "PPO-CartPole")[-1]
    assert "done" in final and "100%" in final, final
    assert "policy_loss" in final and "return" in final, final


def test_discovered_and_importable_by_its_public_name():
    info = get_registry().plugins["console"]
    assert info.distribution == "lerax-console"
    assert [(r.name, r.kind) for r in info.registrations] == [("console", "backend")]
    from lerax.callback import ConsoleBackend as Exported

    assert Exported is ConsoleBackend
    backend = make("console", total_timesteps=2**16)
    assert isinstance(backend, ConsoleBackend) and backend.total_timesteps == 2**16


def test_import_is_light():
    heavy = ("rich", "jax", "tensorboardX", "wandb", "lerax.callback")
    code = (
        "import sys, lerax_console\n"
        f"print([m for m in sys.modules if m.startswith({heavy!r})])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"total_timesteps": 0}, ValueError, "0"),
        ({"total_timesteps": 1.5}, ValueError, "1.5"),
        ({"total_timesteps": True}, ValueError, "True"),
        ({"console": "stdout"}, TypeError, "str"),
        ({"refresh_per_second": 0}, ValueError, "refresh_per_second"),
        ({"refresh_per_second": math.inf}, ValueError, "inf"),
        ({"plain_every": 0}, ValueError, "plain_every"),
    ],
)
def test_bad_options_fail_at_construction(options, error, named):
    with pytest.raises(error, match=re.escape(named)):
        ConsoleBackend(**options)


# ------------------------------------------------------- the terminal display


def test_live_display_shows_progress_and_metrics_and_updates():
    console = terminal()
    backend = ConsoleBackend(1000, console=console, refresh_per_second=50)
    backend.lerax_on_training_start("run-A", {})
    try:
        backend.lerax_on_iteration(250, {**METRICS, "episode/return": math.nan})
        wait_for(console, "25%")
        # with the deprecated copy of episode/return that LoggingCallback sends
        backend.lerax_on_iteration(500, {**METRICS, "episode/return_mean": 20.0})
        text = wait_for(console, "50%")
    finally:
        backend.lerax_close()
    shown = frames(text, "run-A")
    first = next(f for f in shown if "25%" in f)
    second = next(f for f in shown if "50%" in f)
    assert "250/1,000 steps" in first and "500/1,000 steps" in second
    assert row(first, "return") == "nan" and row(second, "return") == "20"
    assert row(second, "return_ema") == "18"
    assert "return_mean" not in text  # deprecated names are not shown
    assert row(second, "policy_loss") == "-0.0123"
    assert "steps/s" in second and "left" in second
    # grouped and sorted: episode rows, then time, then train
    order = [second.index(name) for name in ("length", "return", "steps_per_second")]
    assert order == sorted(order)
    assert second.index("learning_rate") < second.index("policy_loss")
    assert "training for" not in text and " | " not in text  # no plain lines
    final = frames(console.export_text(clear=False), "run-A")[-1]
    assert "stopped" in final and "50%" in final  # closed before the end


def test_close_stops_the_display_and_is_idempotent():
    console = terminal()
    backend = ConsoleBackend(100, console=console)
    stdout = sys.stdout
    backend.lerax_on_training_start("run-B", {})
    assert sys.stdout is not stdout  # prints go above the live display meanwhile
    backend.lerax_on_iteration(100, METRICS)
    backend.lerax_on_training_end(100, "completed")
    assert sys.stdout is stdout
    drawn = console.export_text(clear=False)
    assert "done" in frames(drawn, "run-B")[-1] and "100%" in drawn
    backend.lerax_close()
    backend.lerax_close()
    assert console.export_text(clear=False) == drawn  # nothing more drawn


def test_indeterminate_bar_fills_when_training_ends():
    console = terminal()
    backend = ConsoleBackend(console=console, refresh_per_second=50)
    backend.lerax_on_training_start("run-C", {})
    try:
        backend.lerax_on_iteration(300, METRICS)
        text = wait_for(console, "300 steps")
    finally:
        backend.lerax_on_training_end(300, "completed")
    running = next(f for f in frames(text, "run-C") if "300 steps" in f)
    assert "%" not in running.splitlines()[1]  # no percentage without a total
    picture = terminal()
    picture.print(backend)  # the backend renders its final display
    shown = picture.export_text()
    assert "100%" in shown and "300/300 steps" in shown


def test_total_from_the_run_hyperparameters():
    backend = ConsoleBackend(console=terminal())
    backend.lerax_on_training_start("run-D", {TOTAL_TIMESTEPS_KEY: 400})
    backend.lerax_on_iteration(100, METRICS)
    picture = terminal()
    picture.print(backend)
    backend.lerax_close()
    shown = picture.export_text()
    assert "25%" in shown and "100/400 steps" in shown


def test_non_finite_metrics_render():
    metrics = {
        "a/nan": math.nan,
        "a/inf": math.inf,
        "a/ninf": -math.inf,
        "big": 1e300,
        "b/[bold]odd[/]": 1.0,  # names are shown as they are, not as markup
    }
    for console in (terminal(), Console(file=io.StringIO(), width=80)):
        backend = ConsoleBackend(10, console=console)
        backend.lerax_on_training_start("run-E", {})
        backend.lerax_on_iteration(10, metrics)
        backend.lerax_on_training_end(10, "completed")
        picture = terminal()
        picture.print(backend)
        text = picture.export_text()
        assert [row(text, name) for name in ("nan", "inf", "ninf")] == [
            "nan",
            "inf",
            "-inf",
        ]
        assert row(text, "big") == format_value(1e300)
        assert row(text, "[bold]odd[/]") == "1"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.nan, "nan"),
        (-math.inf, "-inf"),
        (3.0, "3"),
        (-0.0, "0"),
        (4e9, "4.00e+09"),
        (123456.0, "123,456"),
        (1234.56, "1,234.6"),
        (0.012345, "0.01235"),
        (2.5e-4, "2.50e-04"),
        (1e300, "1.00e+300"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


RUN_NAME = "PPO-CartPole-20250101-120000-1234.0"
FULL_METRICS = {
    **METRICS,
    "episode/return_ema": 400.1,
    "train/value_loss": 12.5,
    "train/entropy": 0.51,
    "train/approx_kl": 0.0042,
    "time/steps_per_second": 166_205.9,
}


def displays(width: int) -> dict[str, list[str]]:
    """The display mid-run and at the end, rendered `width` columns wide."""
    backend = ConsoleBackend(65_536, console=Console(file=io.StringIO(), width=width))
    backend.lerax_on_training_start(RUN_NAME, {})
    backend.lerax_on_iteration(2_048, {**FULL_METRICS, "time/steps_per_second": 1e5})
    backend.lerax_on_iteration(32_768, FULL_METRICS)
    shown = {}
    for moment in ("running", "done"):
        if moment == "done":
            backend.lerax_on_training_end(65_536, "completed")
        picture = Console(file=io.StringIO(), record=True, width=width)
        picture.print(backend)
        shown[moment] = picture.export_text().rstrip("\n").splitlines()
    return shown


@pytest.mark.parametrize("width", [80, 60, 40])
def test_display_fits_the_width_without_cutting_anything(width):
    for moment, lines in displays(width).items():
        text = "\n".join(lines)
        assert all(len(line) <= width for line in lines), text
        assert "…" not in text, f"something was cut at {width} columns:\n{text}"
        bar = next(line for line in lines if "━" in line)
        assert re.search("━{10,}", bar), f"bar too short to read:\n{text}"
        status = "training" if moment == "running" else "done"
        assert bar.startswith(f"{status} ━")
        percent = "50%" if moment == "running" else "100%"
        steps = "32,768/65,536" if moment == "running" else "65,536/65,536"
        assert f" {percent}" in bar and f"{steps} steps" in text
        assert re.search(r"(?<!\S)\d+:\d\d:\d\d elapsed", text), text
        assert ("0:00:00 left" in text) == (moment == "running")
        # The bar's speed is the run's average; the table's is the latest row's.
        assert re.findall(r"\S+ [\d,]+ steps/s", text) == ["avg 159,602 steps/s"]
        assert row(text, "steps_per_second") == "166,205.9"
        assert row(text, "policy_loss") == "-0.0123"


def test_display_uses_one_line_when_it_fits():
    running = displays(140)["running"]
    (bar,) = [line for line in running if "━" in line]
    assert bar.endswith("steps/s  0:00:00 elapsed  0:00:00 left")
    assert bar.count("━") + bar.count("╸") == 40  # the widest bar


def test_speed_and_time_left_come_from_the_training_loop_timing():
    console = Console(file=io.StringIO(), width=200)
    backend = ConsoleBackend(100_000, console=console, plain_every=1)
    backend.lerax_on_training_start("run-F", {})
    backend.lerax_on_iteration(500, {})  # the loop times from the second iteration
    backend.lerax_on_iteration(1000, {"time/steps_per_second": 100.0})
    backend.lerax_on_iteration(2000, {"time/steps_per_second": 400.0})
    backend.lerax_close()
    lines = console.file.getvalue().splitlines()
    # 1,500 steps in 5 + 2.5 seconds: 200 steps/s; 98,000 steps left: 490 s
    assert lines[-2].endswith("| avg 200 steps/s | 0:08:10 left")
    assert lines[-1].startswith("stopped: step 2,000/100,000 (2.0%) | avg 200 steps/s")


class SlowStart(AbstractLoggingBackend):
    """A backend that takes half a second to start (a first import, a W&B run)."""

    def lerax_on_training_start(self, run_name, hyperparameters):
        time.sleep(0.5)

    def lerax_on_iteration(self, step, metrics):
        pass

    def lerax_close(self):
        pass


def test_speed_is_right_from_the_first_line_behind_a_slow_backend():
    # Events wait while the backend before this one starts; the speed must come
    # from the training loop's timing, not from when this backend heard of the start.
    console = Console(file=io.StringIO(), width=200)
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    # Iterations of 8,192 steps: timed from when the console heard of the start,
    # the first would look several times faster than the whole run.
    algo = PPO(num_envs=64, num_steps=128, num_epochs=1, num_minibatches=2)
    backend = ConsoleBackend(console=console, plain_every=1)
    with LoggingCallback([SlowStart(), backend]) as logger:
        algo.learn(
            env,
            policy,
            4 * algo.steps_per_iteration,
            key=jax.random.key(1),
            callback=logger,
        )
    lines = console.file.getvalue().splitlines()
    speeds = [
        float(match.group(1).replace(",", ""))
        for line in lines
        if (match := re.search(r"\| avg ([\d,]+) steps/s", line))
    ]
    assert len(speeds) == 5, lines  # four iterations and the final line
    first, overall = speeds[0], speeds[-1]
    assert first < 2 * overall, lines  # timed by the console, it was 5x
    assert first > overall / 20, lines  # a first iteration may run slower


# ------------------------------------------------------------ the plain lines


def test_plain_lines_off_a_terminal():
    console = Console(file=io.StringIO(), width=60)
    backend = ConsoleBackend(1000, console=console, plain_every=2)
    for run in range(2):  # the same backend shows successive runs
        backend.lerax_on_training_start(f"run-{run}", {})
        for i in range(1, 5):
            metrics = {**METRICS, "episode/return_ema": 10.0 * i}
            backend.lerax_on_iteration(250 * i, metrics)
        backend.lerax_on_training_end(1000, "completed")
    backend.lerax_on_training_start("run-2", {})
    backend.lerax_on_iteration(500, METRICS)
    backend.lerax_close()  # before the end: the run is reported as stopped
    backend.lerax_close()
    output = console.file.getvalue()
    assert "\x1b" not in output
    lines = output.splitlines()
    assert len(lines) == 13  # per run: start, iterations 1, 2, 4, end
    assert lines[0] == "run-0: training for 1,000 env steps"
    assert lines[1].startswith("step 250/1,000 (25.0%) | episode/return_ema 10 | ")
    assert lines[2].startswith("step 500/1,000 (50.0%) | episode/return_ema 20 | ")
    assert lines[2].endswith("| avg 12,345 steps/s | 0:00:00 left")
    assert lines[4].startswith(
        "done: step 1,000/1,000 (100.0%) | episode/return_ema 40"
    )
    assert lines[5] == "run-1: training for 1,000 env steps"
    assert all(len(line) > 60 for line in lines[1:5])  # long lines are not wrapped
    assert lines[-1].startswith(
        "stopped: step 500/1,000 (50.0%) | episode/return_ema 18"
    )


def test_learn_by_name_end_to_end(capsys, monkeypatch):
    plain_environment(monkeypatch)
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    total = 3 * algo.steps_per_iteration
    algo.learn(env, policy, total, key=jax.random.key(1), callback="console")
    output = capsys.readouterr().out  # closed at training end: everything is out
    assert "\x1b" not in output
    lines = output.splitlines()
    # learn tells the backend its total (run/total_timesteps)
    assert lines[0].startswith("PPO-CartPole-")
    assert lines[0].endswith(f": training for {total:,} env steps")
    first = algo.steps_per_iteration
    assert lines[1].startswith(f"step {first}/{total} ({first / total:.1%}) | ")
    assert lines[-1].startswith(f"done: step {total}/{total} (100.0%) | ")


# ------------------------------------------------------------ a real terminal


def run_in_pty(args: list[str], *, columns: int, timeout: float) -> bytes:
    """Run `python args` with a pseudo-terminal as its stdin, stdout and stderr."""
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTY_", "NO_"))}
    env.update(TERM="xterm-256color", COLUMNS=str(columns), LINES="50")
    child = subprocess.Popen(
        [sys.executable, *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    output, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        else:
            pytest.fail(f"training under a pty did not finish:\n{output[-2000:]!r}")
    finally:
        os.close(leader)
        if child.poll() is None:
            child.kill()
        child.wait()
    assert child.returncode == 0, output.decode(errors="replace")[-3000:]
    return output


def test_live_display_in_a_pseudo_terminal_and_svg(tmp_path):
    svg = tmp_path / "console.svg"
    script = str(PLUGIN_DIR / "scripts" / "render_svg.py")
    raw = run_in_pty(
        [script, str(svg), "--total-timesteps", "768"], columns=80, timeout=600
    )
    assert b"\x1b[?25l" in raw  # the live display hid the cursor: a terminal
    text = ANSI.sub("", raw.decode("utf-8", errors="replace"))
    final = frames(text, "PPO-CartPole")[-1]
    assert "100%" in final and "768/768 steps" in final
    assert "…" not in final and re.search(r"\d+:\d\d:\d\d elapsed", final)
    for name in ("episode", "return", "policy_loss", "learning_rate"):
        assert name in final
    picture = svg.read_text()
    assert picture.startswith("<svg") and len(picture.encode()) < 100_000
    assert "policy_loss" in picture and "100%" in picture


def test_a_resumed_run_shows_its_true_progress_and_speed():
    backend = ConsoleBackend(console=terminal())
    backend.lerax_on_resume(300, None)
    backend.lerax_on_training_start("run-R", {TOTAL_TIMESTEPS_KEY: 400})
    time.sleep(0.2)
    backend.lerax_on_iteration(300, {"episode/return": 1.0})  # no speed measured yet
    picture = terminal()
    picture.print(backend)
    backend.lerax_close()
    shown = picture.export_text()
    assert "75%" in shown and "300/400 steps" in shown
    # no steps of its own yet: no average speed, not 300 steps in 0.2 s
    assert "avg - steps/s" in shown
