"""Wall-time cost of logging to console, TensorBoard and W&B at once.

Run: `python benchmarks/logging_overhead.py [--timesteps N] [--repeats R]`.
Compiles both variants first, then alternates timed runs of PPO on CartPole
with no callback and with `callback=["console", "tensorboard", "wandb"]`
(W&B offline, files in a temporary directory), and prints the median wall
times and the median of the per-round ratios with their quartiles (target:
ratio <= 1.02). Also reports host memory (RSS) at the start and end of a long
logged run, to show it stays flat. `--log-every K` times the same backends
given only every K-th iteration (`LoggingCallback(..., log_every=K)`), for
comparison; the target is for K = 1.
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
from lerax.callback import LoggingCallback, make
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
    parser.add_argument("--log-every", type=int, default=1)
    args = parser.parse_args()
    args.repeats = max(2, args.repeats)  # quartiles need two rounds

    os.chdir(tempfile.mkdtemp(prefix="lerax-overhead-"))  # runs/ and wandb/ go here
    env, algo = CartPole(), PPO()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))

    def logged():
        if args.log_every == 1:
            return NAMES  # what users write
        backends = [make(name) for name in NAMES]
        return LoggingCallback(backends, close_at_end=True, log_every=args.log_every)

    for callback in (None, logged()):  # compile both
        timed(algo, env, policy, args.timesteps, callback)

    plain, logged_times = [], []
    for _ in range(args.repeats):
        plain.append(timed(algo, env, policy, args.timesteps, None))
        logged_times.append(timed(algo, env, policy, args.timesteps, logged()))
    base, with_logs = statistics.median(plain), statistics.median(logged_times)
    ratios = [b / a for a, b in zip(plain, logged_times, strict=True)]
    ratio = statistics.median(ratios)
    low, _, high = statistics.quantiles(ratios, n=4)
    print(f"\ntimesteps per run       {args.timesteps}")
    print(
        f"no callback             {base:.3f} s  ({args.timesteps / base:,.0f} steps/s)"
    )
    every = "" if args.log_every == 1 else f", log_every={args.log_every}"
    print(f"console+tensorboard+wandb {with_logs:.3f} s{every}")
    print(
        f"ratio                   {ratio:.4f}  (quartiles {low:.3f}-{high:.3f}; "
        f"{'PASS' if ratio <= 1.02 else 'FAIL'} <= 1.02)"
    )

    before = rss_mib()
    timed(algo, env, policy, args.memory_timesteps, logged())
    after = rss_mib()
    print(
        f"RSS over a {args.memory_timesteps:,}-step logged run: "
        f"{before:.0f} MiB -> {after:.0f} MiB ({after - before:+.0f} MiB)"
    )


if __name__ == "__main__":
    main()
