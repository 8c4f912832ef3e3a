"""The cost of in-loop evaluation and of checkpoints, on PPO's defaults on CartPole.

Run from the repository root:

    python benchmarks/evaluation.py            # 7 timed rounds
    python benchmarks/evaluation.py --quick    # 3 rounds

Each case trains PPO with its defaults for 2**18 steps through `learn`:

1. no callback;
2. `EvalCallback(every=16, episodes=16)`: 16 greedy episodes every 16 iterations
   (8 evaluations; CartPole's episodes last up to 500 steps); target: <= 5 %;
3. `CheckpointCallback(every=32)` to a temporary directory (4 checkpoints and the
   last); target: <= 3 %, and under 50 ms of training-thread time per checkpoint.

Cases run round-robin after one compilation each, so that a busy machine slows
them alike; the overheads are medians of per-round ratios against the
no-callback run of the same round, with their spread (min..max). The
checkpoint's training-thread time is the run's extra wall time divided by its
5 checkpoints (copying the carry out of XLA's buffers, handing it to the
writer thread, and waiting at the end for the last one to be written); the
hand-over alone (`Checkpointer.save`) is printed too.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import jax

from lerax.algorithm import PPO
from lerax.callback import CheckpointCallback, EvalCallback
from lerax.callback.checkpoint import Checkpointer
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

STEPS = 2**18


def timed(algo, env, policy, make_callback) -> tuple[float, float]:
    """Wall time of one `learn` (and of its policy reaching the host)."""
    callback = make_callback()
    start = time.perf_counter()
    trained = algo.learn(env, policy, STEPS, key=jax.random.key(1), callback=callback)
    jax.block_until_ready(trained)
    return time.perf_counter() - start, callback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO()
    scratch = Path(tempfile.mkdtemp(prefix="lerax-bench-"))
    counter = iter(range(10**6))

    # Time the hand-over on the training thread (the writer thread does the rest).
    save_times: list[float] = []
    original_save = Checkpointer.save

    def timed_save(self, *arrays):
        start = time.perf_counter()
        original_save(self, *arrays)
        save_times.append(time.perf_counter() - start)

    Checkpointer.save = timed_save

    cases = {
        "no callback": lambda: None,
        "EvalCallback(every=16, episodes=16)": lambda: EvalCallback(
            every=16, episodes=16
        ),
        "CheckpointCallback(every=32)": lambda: CheckpointCallback(
            scratch / str(next(counter)), every=32
        ),
    }
    # Compile each case once, untimed.
    for make in cases.values():
        timed(algo, env, policy, make)

    times: dict[str, list[float]] = {name: [] for name in cases}
    checkpoint_calls: list[list[float]] = []
    for _ in range(rounds):
        for name, make in cases.items():
            if name.startswith("Checkpoint"):
                save_times.clear()
                seconds, callback = timed(algo, env, policy, make)
                checkpoint_calls.append(list(save_times))
                callback.close()
            else:
                seconds, _ = timed(algo, env, policy, make)
            times[name].append(seconds)

    print(
        f"PPO defaults, CartPole, {STEPS} steps, {rounds} rounds; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"jax {jax.__version__}"
    )
    base = times["no callback"]
    print(f"{'case':40s} {'median s':>9s} {'steps/s':>9s} {'overhead (min..max)':>24s}")
    for name, values in times.items():
        median = statistics.median(values)
        ratios = [v / b - 1 for v, b in zip(values, base, strict=True)]
        spread = (
            f"{100 * statistics.median(ratios):+.1f} % "
            f"({100 * min(ratios):+.1f}..{100 * max(ratios):+.1f})"
            if name != "no callback"
            else ""
        )
        print(f"{name:40s} {median:9.3f} {STEPS / median:9.0f} {spread:>24s}")
    per_checkpoint = [
        (c - b) / (STEPS // algo.steps_per_iteration // 32 + 1)
        for c, b in zip(times["CheckpointCallback(every=32)"], base, strict=True)
    ]
    hand_over = [t for calls in checkpoint_calls for t in calls]
    print(
        f"checkpoint: {1000 * statistics.median(per_checkpoint):.1f} ms of training "
        f"time each (median over rounds of the extra wall time / 5 checkpoints, the "
        f"last one waited for); hand-over to the writer "
        f"{1000 * statistics.median(hand_over):.2f} ms (median of {len(hand_over)})"
    )


if __name__ == "__main__":
    main()
