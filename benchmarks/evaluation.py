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
no-callback run of the same round, with their spread (min..max). A
checkpoint during training costs the run's extra wall time, minus the wait for
the final checkpoint at the end, divided by the 3 checkpoints written during
training (copying the carry out of XLA's buffers, handing it to the writer
thread, and the writer's CPU time competing with training); the hand-over alone
(`Checkpointer.save`) and the final wait are printed too.
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

    original_end = Checkpointer.end

    def timed_save(self, *arrays):
        start = time.perf_counter()
        original_save(self, *arrays)
        save_times.append(time.perf_counter() - start)

    def timed_end(self, *arrays):
        start = time.perf_counter()
        original_end(self, *arrays)
        save_times.append(time.perf_counter() - start)

    Checkpointer.save, Checkpointer.end = timed_save, timed_end

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
    # Checkpoints at iterations 32, 64, 96 while training, and 128 at the end,
    # whose write training waits for before it returns.
    waits = [calls[-1] for calls in checkpoint_calls]
    periodic = [
        (c - b - w) / (len(calls) - 1)
        for c, b, w, calls in zip(
            times["CheckpointCallback(every=32)"],
            base,
            waits,
            checkpoint_calls,
            strict=True,
        )
    ]
    hand_over = [t for calls in checkpoint_calls for t in calls[:-1]]
    print(
        f"checkpoint during training: {1000 * statistics.median(periodic):.1f} ms of "
        f"wall time each (extra wall time minus the final wait, per checkpoint; "
        f"hand-over on the training thread {1000 * statistics.median(hand_over):.2f} "
        f"ms); the final one, waited for: {1000 * statistics.median(waits):.0f} ms"
    )


if __name__ == "__main__":
    main()
