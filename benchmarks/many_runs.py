"""Many runs in one `learn`: throughput, devices, logging cost and compile time.

Prints, for PPO's defaults on CartPole:

1. 8 members (`key=jax.random.split(key, 8)`) through the public `learn`, no
   callback, against rejax 0.1.3's `jax.jit(jax.vmap(train))` over 8 seeds on
   the same hyper-parameters, and one member / one seed of each (2**16 steps
   per member). Target: Lerax's 8 members >= 1.3x rejax's.
2. With `--devices 2` (the script re-runs itself with
   `XLA_FLAGS=--xla_force_host_platform_device_count=2`): 8 members sharded
   over the two devices against the same 8 members on one device, and rejax's
   vmapped train with its keys sharded over the two devices. Targets: sharded
   >= one device, and >= rejax's sharded figure.
3. `--logging`: 8 members at 2**18 steps each logging per member to console,
   TensorBoard and W&B (offline) against the unlogged run. Target <= 1.10x.
4. Compile time of 8 members against one (first call minus a steady run).
   Target <= 1.5x.

Cases are timed round-robin (medians of the timed runs), so a busy machine
slows them alike. rejax runs only where it is importable (see README.md).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import jax
import jax.random as jr
from speed import Case, rejax_ppo, time_round_robin

from lerax.algorithm import PPO
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

MEMBERS = 8
TARGET_VS_REJAX = 1.3
TARGET_LOGGED = 1.10
TARGET_COMPILE = 1.5


def lerax_members(
    name: str, members: int | None, steps: int, callback: Any = None, **learn: Any
) -> Case:
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jr.key(0))
    algo = PPO()

    def run(seed: int):
        key = jr.fold_in(jr.key(1), seed)
        keys = key if members is None else jr.split(key, members)
        made = callback() if callable(callback) else callback
        trained = algo.learn(env, policy, steps, key=keys, callback=made, **learn)
        trained = jax.block_until_ready(trained)
        if hasattr(made, "close"):
            made.close()
        return trained

    return Case(name, steps * (members or 1), run)


def rejax_members(name: str, members: int | None, steps: int, sharded: bool) -> Case:
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    algo = rejax_ppo({}, steps)
    train = jax.jit(algo.train if members is None else jax.vmap(algo.train))

    def run(seed: int):
        key = jax.random.PRNGKey(seed)
        if members is not None:
            key = jax.random.split(key, members)
            if sharded:
                mesh = Mesh(jax.devices(), ("seeds",))
                key = jax.device_put(key, NamedSharding(mesh, PartitionSpec("seeds")))
        return jax.block_until_ready(train(key))

    return Case(name, steps * (members or 1), run)


def have_rejax() -> bool:
    try:
        import rejax  # noqa: F401
    except ImportError:
        return False
    return True


def report(cases: list[Case]) -> None:
    width = max(len(c.name) for c in cases)
    print(f"{'case':<{width}}  {'steps/s':>12}  {'compile s':>9}")
    for case in cases:
        print(
            f"{case.name:<{width}}  {case.steps_per_second:>12,.0f}  "
            f"{case.compile_seconds:>9.2f}"
        )


def verdict(what: str, ok: bool) -> None:
    print(f"  {'PASS' if ok else 'MISS'}: {what}")


def one_device(repeats: int, steps: int) -> None:
    print(f"\n1. {MEMBERS} members vs one, {steps:,} steps per member, 1 device")
    cases = [
        lerax_members("lerax, 1 member", None, steps),
        lerax_members(f"lerax, {MEMBERS} members", MEMBERS, steps),
    ]
    if have_rejax():
        cases += [
            rejax_members("rejax, 1 seed", None, steps, sharded=False),
            rejax_members(f"rejax, vmap {MEMBERS} seeds", MEMBERS, steps, False),
        ]
    time_round_robin(cases, repeats, compile_repeats=1)
    report(cases)
    one, many = cases[0], cases[1]
    ratio = many.compile_seconds / one.compile_seconds
    print(f"  compile, {MEMBERS} members / 1: {ratio:.2f}x")
    verdict(f"compile of {MEMBERS} members <= {TARGET_COMPILE}x one's", ratio <= 1.5)
    if have_rejax():
        gain = many.steps_per_second / cases[3].steps_per_second
        print(f"  lerax / rejax, {MEMBERS} members: {gain:.2f}x")
        verdict(f"lerax >= {TARGET_VS_REJAX}x rejax vmapped", gain >= TARGET_VS_REJAX)


def two_devices(repeats: int, steps: int) -> None:
    assert len(jax.devices()) == 2, "run with --devices 2"
    print(f"\n2. {MEMBERS} members, {steps:,} steps per member, 2 host devices")
    cases = [
        lerax_members("lerax, 1 device", MEMBERS, steps, devices=jax.devices()[:1]),
        lerax_members("lerax, sharded over 2", MEMBERS, steps),
    ]
    if have_rejax():
        cases += [
            rejax_members("rejax, 1 device", MEMBERS, steps, sharded=False),
            rejax_members("rejax, sharded over 2", MEMBERS, steps, sharded=True),
        ]
    time_round_robin(cases, repeats, compile_repeats=1)
    report(cases)
    sharded = cases[1].steps_per_second
    verdict("sharded >= one device", sharded >= cases[0].steps_per_second)
    if have_rejax():
        verdict("sharded >= rejax sharded", sharded >= cases[3].steps_per_second)


def logging_cost(repeats: int, steps: int) -> None:
    from rich.console import Console

    from lerax.logging import LoggingCallback
    from lerax_console import ConsoleBackend
    from lerax_tensorboard import TensorBoardBackend
    from lerax_wandb import WandbBackend

    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    directory = Path(tempfile.mkdtemp(prefix="lerax-many-runs-"))
    print(f"\n3. {MEMBERS} members, {steps:,} steps per member, logged per member")
    print(f"   (console + TensorBoard + W&B offline, files in {directory})")

    def logger() -> LoggingCallback:
        quiet = Console(file=io.StringIO(), force_terminal=False)
        return LoggingCallback(
            [
                ConsoleBackend(console=quiet),
                TensorBoardBackend(directory / f"tb-{time.monotonic_ns()}"),
                WandbBackend(dir=directory, quiet=True),
            ]
        )

    cases = [
        lerax_members("no callback", MEMBERS, steps),
        lerax_members("console + tensorboard + wandb", MEMBERS, steps, logger),
    ]
    time_round_robin(cases, repeats, compile_repeats=1)
    report(cases)
    ratio = statistics_ratio(cases[1], cases[0])
    print(f"  logged / unlogged wall time: {ratio:.3f}x")
    verdict(f"logged <= {TARGET_LOGGED}x unlogged", ratio <= TARGET_LOGGED)


def statistics_ratio(case: Case, base: Case) -> float:
    import statistics

    return statistics.median(c / b for c, b in zip(case.times, base.times, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--devices", type=int, default=1, choices=(1, 2))
    parser.add_argument("--logging", action="store_true", help="part 3 only")
    parser.add_argument("--steps", type=int, default=2**16, help="steps per member")
    args = parser.parse_args()
    if args.devices == 2 and len(jax.devices()) != 2:
        flags = "--xla_force_host_platform_device_count=2"
        env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
        raise SystemExit(subprocess.call([sys.executable, *sys.argv], env=env))
    print(
        f"jax {jax.__version__}, {len(jax.devices())} device(s), {os.cpu_count()} cores"
    )
    if args.logging:
        logging_cost(args.repeats, max(args.steps, 2**18))
    elif args.devices == 2:
        two_devices(args.repeats, args.steps)
    else:
        one_device(args.repeats, args.steps)


if __name__ == "__main__":
    main()
