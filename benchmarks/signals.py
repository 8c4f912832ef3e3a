"""What SIGTERM and repeated Ctrl-C cost the logs: rows lost, sessions left open.

Run: `python benchmarks/signals.py [--repeats 3]`.

Each case trains PPO (tiny iterations, 2**24 steps: far longer than the case
lasts) in a fresh process with the backends `Slow()`, TensorBoard, W&B and
jsonl (W&B offline, in a temporary directory), where `Slow` takes 50 ms per row
so that rows are queued when the signals come; either named in `learn`'s
`callback` (`names`: `learn` closes them) or in a `LoggingCallback` that the
script closes in a `finally` (`logger`). Once 100 rows have reached
jsonl, the driver sends the case's signals, 0.5 s apart:

- `TERM`: one SIGTERM, what a scheduler sends before SIGKILL;
- `TERM TERM`: a second one while the slow backend is still being closed;
- `INT INT`, `INT INT INT`: Ctrl-C twice and three times.

Every backend is given the same rows, so the rows the loop produced are the
steps any of them saw (the most any backend wrote). Per case it prints the rows
each backend wrote out of those, or what it said it lost; whether TensorBoard's
session end and W&B's exit record were written, whether `learn` raised
`TrainingInterrupted` with a policy, and how the process ended.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax
    from lerax.algorithm import PPO, TrainingInterrupted
    from lerax.callback import AbstractLoggingBackend, LoggingCallback, make
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    class Slow(AbstractLoggingBackend):
        # 50 ms per row, each row appended to slow.txt as written, closes too.
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
    callback = [Slow(), make("tensorboard", log_dir="runs"), make("wandb"),
                make("jsonl", path="rows.jsonl")]
    if sys.argv[1] == "logger":  # the script owns the logger and closes it
        callback = LoggingCallback(callback)
    try:
        algo.learn(env, policy, 2**24, key=jax.random.key(1), callback=callback)
        print("RESULT returned", flush=True)
    except TrainingInterrupted as stop:
        print("RESULT TrainingInterrupted", type(stop.policy).__name__, flush=True)
    except KeyboardInterrupt as stop:
        print("RESULT", type(stop).__name__, flush=True)
    finally:
        if sys.argv[1] == "logger":
            callback.close()
    """
)

SIGNALS = {
    "TERM": [signal.SIGTERM],
    "TERM TERM": [signal.SIGTERM, signal.SIGTERM],
    "INT INT": [signal.SIGINT, signal.SIGINT],
    "INT INT INT": [signal.SIGINT, signal.SIGINT, signal.SIGINT],
}
CASES = {
    **{f"{name} names": ("names", signals) for name, signals in SIGNALS.items()},
    **{f"{name} logger": ("logger", signals) for name, signals in SIGNALS.items()},
}


def jsonl_steps(path: Path) -> tuple[list[int], bool]:
    if not path.exists():
        return [], False
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut by death
            events.append(json.loads(line))
    steps = [e["step"] for e in events if e.get("event") == "iteration"]
    return steps, any(e.get("event") == "end" for e in events)


def tensorboard(run_dir: Path) -> tuple[list[int], bool]:
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    runs = list((run_dir / "runs").iterdir()) if (run_dir / "runs").exists() else []
    if not runs:
        return [], False
    events = EventAccumulator(str(runs[0]), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("episode/count")]
    ended = "_hparams_/session_end_info" in events.Tags().get("tensors", [])
    ended = ended or any(
        "session_end_info" in tag for tag in events.PluginTagToContent("hparams")
    )
    return steps, ended


def wandb_run(run_dir: Path) -> tuple[list[int], bool]:
    sys.path.insert(0, str(Path(__file__).parents[1] / "plugins/lerax-wandb/tests"))
    from test_wandb import _records  # the offline-log reader of the W&B tests

    paths = list(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    if not paths:
        return [], False
    time.sleep(1.0)  # W&B's service writes a moment after the process
    records = _records(paths[0])
    steps = [r.history.step.num for r in records if r.HasField("history")]
    return steps, any(r.HasField("exit") for r in records)


def run_case(mode: str, signals: list[int], work: Path) -> dict:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(work))
    env.update(JAX_PLATFORMS="cpu", WANDB_SILENT="true")
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while jsonl_steps(work / "rows.jsonl")[0].__len__() < 100:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"no rows: {process.communicate()[1][-2000:]}")
        time.sleep(0.05)
    for index, signum in enumerate(signals):
        if index:
            time.sleep(0.5)
        process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    slow = (
        (work / "slow.txt").read_text().split() if (work / "slow.txt").exists() else []
    )
    jsonl, jsonl_end = jsonl_steps(work / "rows.jsonl")
    board, board_end = tensorboard(work)
    logged, wandb_exit = wandb_run(work)
    slow_rows = len([line for line in slow if line != "close"])
    produced = max(len(jsonl), len(board), len(logged), slow_rows)
    results = [line for line in out.splitlines() if line.startswith("RESULT")]
    lost_said = [line for line in err.splitlines() if "lost" in line or "not " in line]
    return {
        "returncode": process.returncode,
        "result": results[0][7:] if results else "-",
        "produced": produced,
        "slow": slow_rows,
        "slow_closes": slow.count("close"),
        "jsonl": len(jsonl),
        "tensorboard": len(board),
        "wandb": len(logged),
        "tb_session_end": board_end,
        "wandb_exit": wandb_exit,
        "jsonl_end": jsonl_end,
        "reported": lost_said[-1][:160] if lost_said else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    for name in args.cases:
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="lerax-signals-") as work:
                row = run_case(*CASES[name], Path(work))
            print(f"{name:18}", json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
