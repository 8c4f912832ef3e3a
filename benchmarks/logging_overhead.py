"""Wall-time cost of logging to console, TensorBoard and W&B at once.

Run: `python benchmarks/logging_overhead.py [--timesteps N] [--repeats R]`.
Compiles both variants first, then alternates timed runs of PPO on CartPole
with no callback and with `callback=["console", "tensorboard", "wandb"]`
(W&B offline, files in a temporary directory), and prints the median wall
times and the median of the per-round ratios with their quartiles (target:
ratio <= 1.02). Also reports host memory (RSS) at the
start and end of a long logged run, to show it stays flat.
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

import jax

from lerax.algorithm import PPO
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

NAMES = ["console", "tensorboard", "wandb"]


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(algo, env, policy, timesteps, callback) -> float:
    start = time.perf_counter()
    trained = algo.learn(
        env, policy, timesteps, key=jax.random.key(1), callback=callback
    )
    jax.block_until_ready(trained)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timesteps", type=int, default=2**18)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--memory-timesteps", type=int, default=10**6)
    args = parser.parse_args()
    args.repeats = max(2, args.repeats)  # quartiles need two rounds

    os.chdir(tempfile.mkdtemp(prefix="lerax-overhead-"))  # runs/ and wandb/ go here
    env, algo = CartPole(), PPO()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    for callback in (None, NAMES):  # compile both
        timed(algo, env, policy, args.timesteps, callback)

    plain, logged = [], []
    for _ in range(args.repeats):
        plain.append(timed(algo, env, policy, args.timesteps, None))
        logged.append(timed(algo, env, policy, args.timesteps, NAMES))
    base, with_logs = statistics.median(plain), statistics.median(logged)
    ratios = [b / a for a, b in zip(plain, logged, strict=True)]
    ratio = statistics.median(ratios)
    low, _, high = statistics.quantiles(ratios, n=4)
    print(f"\ntimesteps per run       {args.timesteps}")
    print(
        f"no callback             {base:.3f} s  ({args.timesteps / base:,.0f} steps/s)"
    )
    print(f"console+tensorboard+wandb {with_logs:.3f} s")
    print(
        f"ratio                   {ratio:.4f}  (quartiles {low:.3f}-{high:.3f}; "
        f"{'PASS' if ratio <= 1.02 else 'FAIL'} <= 1.02)"
    )

    before = rss_mib()
    timed(algo, env, policy, args.memory_timesteps, NAMES)
    after = rss_mib()
    print(
        f"RSS over a {args.memory_timesteps:,}-step logged run: "
        f"{before:.0f} MiB -> {after:.0f} MiB ({after - before:+.0f} MiB)"
    )


if __name__ == "__main__":
    main()
