"""Ctrl-C stops a jitted `learn` after the current iteration, with logs complete."""

import json
import signal
import subprocess
import sys
import time

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
