"""Ctrl-C stops a jitted `learn` after the current iteration, with logs complete."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

SCRIPT = """
import sys, jax
from lerax.algorithm import PPO, TrainingInterrupted
from lerax.callback import LoggingCallback, make
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

env = CartPole()
policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
logger = LoggingCallback([make("jsonl", path=sys.argv[1])])
try:
    PPO().learn(env, policy, 2**24, key=jax.random.key(1), callback=logger)
    print("finished")
except TrainingInterrupted as stop:
    print("interrupted", type(stop.policy).__name__, flush=True)
finally:
    logger.close()
"""


def test_ctrl_c_stops_at_the_next_iteration_and_keeps_every_logged_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(path)], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until a few iterations are logged
        if path.exists() and path.read_text().count("\n") >= 4:
            break
        time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError("training never logged an iteration")
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, _ = process.communicate(timeout=120)
    stopped_in = time.monotonic() - sent

    assert process.returncode == 0
    assert out.strip() == "interrupted MLPActorCriticPolicy"
    assert stopped_in < 30, "2**24 steps take minutes: Ctrl-C must not wait for them"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert set(kinds[1:-1]) == {"iteration"}
    steps = [event["step"] for event in events if event["event"] == "iteration"]
    assert steps == sorted(steps) and events[-1]["step"] == steps[-1] < 2**24
    assert events[-1]["reason"] == "interrupted"


SLOW_CLOSE = """
import sys, time
import jax
from lerax.algorithm import PPO, TrainingInterrupted
from lerax.callback import AbstractLoggingBackend, LoggingCallback, make
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy


class Slow(AbstractLoggingBackend):
    # 50 ms a row, each written to slow.txt as it is delivered; so is its close.
    def lerax_on_training_start(self, run_name, hyperparameters):
        pass

    def lerax_on_iteration(self, step, metrics):
        time.sleep(0.05)
        with open("slow.txt", "a") as file:
            file.write(f"{step}\\n")

    def lerax_close(self):
        with open("slow.txt", "a") as file:
            file.write("close\\n")


env = CartPole()
policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
callback = [Slow(), make("jsonl", path="rows.jsonl"), make("console")]
if sys.argv[1] == "logger":  # the script owns the logger and closes it
    callback = LoggingCallback(callback)
try:
    algo.learn(env, policy, 2**24, key=jax.random.key(1), callback=callback)
except TrainingInterrupted as stop:
    print("RESULT", type(stop.policy).__name__, flush=True)
finally:
    if sys.argv[1] == "logger":
        callback.close()
"""


def interrupt_while_closing(tmp_path, signals, mode="names"):
    """Run SLOW_CLOSE; once 50 rows are in rows.jsonl (the slow backend is then
    far behind), send `signals` half a second apart. Returns the process's
    output, the jsonl iteration steps and the lines of slow.txt."""
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLOSE, mode],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows = tmp_path / "rows.jsonl"
    deadline = time.monotonic() + 300
    while not rows.exists() or rows.read_text().count("\n") < 50:
        assert time.monotonic() < deadline and process.poll() is None, (
            process.communicate()
        )
        time.sleep(0.05)
    for index, signum in enumerate(signals):
        time.sleep(0.5 if index else 0)
        process.send_signal(signum)
    out, err = process.communicate(timeout=240)
    events = [json.loads(line) for line in rows.read_text().splitlines()]
    steps = [e["step"] for e in events if e["event"] == "iteration"]
    assert events[-1]["event"] == "end", "the fast backend was not complete"
    return process, out, err, steps, (tmp_path / "slow.txt").read_text().split()


@pytest.mark.slow
def test_second_ctrl_c_while_closing_keeps_the_policy_and_every_row(tmp_path):
    _, out, err, steps, slow = interrupt_while_closing(
        tmp_path, [signal.SIGINT, signal.SIGINT]
    )
    assert "RESULT MLPActorCriticPolicy" in out, (out, err)  # not a policy of None
    assert "stopped waiting for logging backend Slow#0" in err, err
    # The queued rows were written before exit, then the backend closed, once.
    assert slow == [str(step) for step in steps] + ["close"]
    assert out.count("training for") == 1, out  # the console shows one run
    assert "unknown number" not in out, out


@pytest.mark.slow
def test_third_ctrl_c_abandons_the_rows_and_says_how_many(tmp_path):
    _, out, err, steps, slow = interrupt_while_closing(tmp_path, [signal.SIGINT] * 3)
    assert "RESULT MLPActorCriticPolicy" in out, (out, err)
    (said,) = re.findall(r"abandoned logging backend Slow#0: (\d+) queued rows", err)
    assert "close" not in slow
    # The count includes the row the backend was writing when it was abandoned,
    # which may still land before the process exits: never fewer than lost.
    accounted = len(slow) + int(said)
    assert int(said) > 0 and len(steps) <= accounted <= len(steps) + 1, (
        slow,
        said,
        steps,
    )
    assert "unknown number" not in out, out


@pytest.mark.slow
def test_sigterm_twice_with_a_logger_the_script_closes_loses_nothing(tmp_path):
    process, out, err, steps, slow = interrupt_while_closing(
        tmp_path, [signal.SIGTERM, signal.SIGTERM], mode="logger"
    )
    assert process.returncode != 0  # stopped, as by Ctrl-C, not killed at once
    assert "RESULT MLPActorCriticPolicy" in out, (out, err)
    assert slow == [str(step) for step in steps] + ["close"]
