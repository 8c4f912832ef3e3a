"""The cost of in-loop evaluation and of checkpoints, on PPO's defaults on CartPole.

Run from the repository root:

    python benchmarks/evaluation.py            # 15 timed rounds
    python benchmarks/evaluation.py --quick    # 3 rounds

Each case trains PPO with its defaults for 2**18 steps through `learn`:

1. no callback;
2. `EvalCallback(every=16, episodes=16)`: 16 greedy episodes every 16 iterations
   (8 evaluations; CartPole's episodes last up to 500 steps); target: <= 5 %;
3. `CheckpointCallback(every=32)` to a temporary directory (4 checkpoints and the
   last); target: <= 3 %, and under 50 ms of training-thread time per checkpoint.

Where rejax 0.1.3 is importable (a separate environment, see README.md), its
PPO on the same hyper-parameters runs in the same rounds without evaluation and
with its built-in evaluation at the same cadence (16 episodes, and the 128 it
ships with), for comparison.

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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax

from lerax.algorithm import PPO
from lerax.callback import CheckpointCallback, EvalCallback
from lerax.callback.checkpoint import Checkpointer
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

sys.path.insert(0, str(Path(__file__).parent))

STEPS = 2**18
REJAX_BASE = "rejax 0.1.3, no evaluation"


def rejax_runs() -> dict[str, Any]:
    """rejax's PPO on the same hyper-parameters (see speed.py), without and with
    its built-in evaluation at the same cadence: 16 episodes, and the 128 it
    ships with. Empty where rejax is not importable."""
    try:
        from rejax.evaluate import evaluate
        from speed import rejax_ppo
    except ImportError:
        return {}
    plain = rejax_ppo({}, STEPS)
    every = 16 * plain.num_envs * plain.num_steps

    def evaluating(episodes: int) -> Any:
        def eval_callback(algo, ts, rng):
            steps = algo.env_params.max_steps_in_episode
            act = algo.make_act(ts)
            return evaluate(act, rng, algo.env, algo.env_params, episodes, steps)

        return plain.replace(eval_freq=every, eval_callback=eval_callback)

    return {
        REJAX_BASE: jax.jit(plain.train),
        "rejax, built-in eval (16 episodes / 16 it.)": jax.jit(evaluating(16).train),
        "rejax, built-in eval (128 episodes / 16 it.)": jax.jit(evaluating(128).train),
    }


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
    rounds = 3 if args.quick else 15

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
    rejax = rejax_runs()
    # Compile each case once, untimed.
    for make in cases.values():
        timed(algo, env, policy, make)
    for train in rejax.values():
        jax.block_until_ready(train(jax.random.PRNGKey(1)))

    times: dict[str, list[float]] = {name: [] for name in [*cases, *rejax]}
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
        for name, train in rejax.items():
            start = time.perf_counter()
            jax.block_until_ready(train(jax.random.PRNGKey(1)))
            times[name].append(time.perf_counter() - start)

    print(
        f"PPO defaults, CartPole, {STEPS} steps, {rounds} rounds; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"jax {jax.__version__}"
    )
    print(f"{'case':46s} {'median s':>9s} {'steps/s':>9s} {'overhead (min..max)':>24s}")
    for name, values in times.items():
        base = times[REJAX_BASE if name.startswith("rejax") else "no callback"]
        median = statistics.median(values)
        ratios = [v / b - 1 for v, b in zip(values, base, strict=True)]
        spread = (
            f"{100 * statistics.median(ratios):+.1f} % "
            f"({100 * min(ratios):+.1f}..{100 * max(ratios):+.1f})"
            if values is not base
            else ""
        )
        print(f"{name:46s} {median:9.3f} {STEPS / median:9.0f} {spread:>24s}")
    # Checkpoints at iterations 32, 64, 96 while training, and 128 at the end,
    # whose write training waits for before it returns.
    waits = [calls[-1] for calls in checkpoint_calls]
    periodic = [
        (c - b - w) / (len(calls) - 1)
        for c, b, w, calls in zip(
            times["CheckpointCallback(every=32)"],
            times["no callback"],
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
