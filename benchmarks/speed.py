"""Training speed of PPO on CartPole: compile time and steady-state env steps/s.

Run from the repository root:

    python benchmarks/speed.py            # 15 timed runs per case
    python benchmarks/speed.py --quick    # 3 timed runs per case, shorter runs

It prints two tables and which targets pass:

1. Lerax's PPO defaults with (i) no callback, (ii) a no-op user callback
   (`on_step` and `on_iteration` return the state) and (iii) a callback making one
   host call per iteration, sending two scalars with `jax.debug.callback` and,
   the way docs/callbacks.md recommends, with `lerax.host.call` (which
   skips JAX's `device_put` of every operand); targets: >= 100k steps/s for
   (i), overhead of (ii) <= 1 % and of (iii) <= 2 %. For reference it also
   times a `LoggingCallback` whose backend does nothing: the cost of Lerax's
   own per-iteration host call, which overlaps the next rollout.
2. When `rejax` is importable (it is installed with `pip install -e .[bench]`, or
   see `benchmarks/README.md`), Lerax against rejax 0.1.3's PPO on gymnax's
   CartPole-v1 with the same hyper-parameters: rejax's own CartPole config and
   Lerax's defaults. Targets: on equal hyper-parameters Lerax has at least the
   steps/s of rejax and compiles no slower.

Lerax is timed through its public `PPO.learn` and rejax through `jax.jit` of
its `train`. Compile time is the first call after `jax.clear_caches()` (tracing,
lowering, XLA compilation and one run) minus the median steady-state run, the
median over `--compile-repeats` fresh compilations. Steps/s is env steps
actually taken divided by the wall time of one run until
`jax.block_until_ready`, the median of the timed runs after compilation. Cases
are timed round-robin so that a busy machine slows them alike, and overheads
are medians of per-round ratios against the no-callback run of the same round,
printed with their quartiles: on a noisy machine one round's ratio varies by
several per cent, hence 15 rounds.
rejax's periodic evaluation is switched off so that both libraries only train.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import random as jr

from lerax.algorithm import PPO
from lerax.callback import (
    AbstractStatelessCallback,
    EmptyCallback,
    LoggingCallback,
    host,
)
from lerax.env.classic_control import CartPole
from lerax.plugin import AbstractLoggingBackend
from lerax.policy import MLPActorCriticPolicy

TARGET_STEPS_PER_SECOND = 100_000
TARGET_NOOP_OVERHEAD = 1.0  # percent
TARGET_HOST_OVERHEAD = 2.0  # percent

# rejax's own PPO CartPole config (configs/cartpole.yaml in its repository), in
# Lerax's names. rejax does not anneal the learning rate.
REJAX_CARTPOLE = dict(
    num_envs=5,
    num_steps=100,
    num_epochs=5,
    num_minibatches=5,
    learning_rate=0.00075,
    anneal_learning_rate=False,
    gamma=0.99,
    gae_lambda=0.95,
    clip_coef=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
    max_grad_norm=0.5,
)


class NoOpCallback(AbstractStatelessCallback):
    """A user callback whose hooks run but do nothing."""

    def on_step(self, ctx, *, key):
        return ctx.state

    def on_iteration(self, ctx, *, key):
        return ctx.state


def _host_sink(iteration, policy_loss):
    del iteration, policy_loss


class HostCall(AbstractStatelessCallback):
    """A callback sending two scalars to the host once per iteration."""

    def on_iteration(self, ctx, *, key):
        jax.debug.callback(_host_sink, ctx.iteration, ctx.training_log["policy_loss"])
        return ctx.state


class Sink:
    """Host-side receiver of `HostModuleCall`'s scalars."""

    def take(self, iteration, policy_loss):
        del iteration, policy_loss


class HostModuleCall(AbstractStatelessCallback):
    """The same two scalars per iteration, through `lerax.host.call`."""

    handle: jax.Array

    def __init__(self):
        self.handle = host.register(Sink())

    def on_iteration(self, ctx, *, key):
        host.call("take", self.handle, ctx.iteration, ctx.training_log["policy_loss"])
        return ctx.state


class DropEverything(AbstractLoggingBackend):
    """A logging backend that ignores what it gets (for reference only)."""

    def lerax_on_training_start(self, run_name, hyperparameters):
        pass

    def lerax_on_iteration(self, step, metrics):
        pass

    def lerax_close(self):
        pass


@dataclasses.dataclass
class Case:
    """A training run: `run(seed)` trains once and returns when it is done."""

    name: str
    steps: int
    run: Callable[[int], Any]
    compile_seconds: float = float("nan")
    times: list[float] = dataclasses.field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return self.steps / statistics.median(self.times)


def _ppo_fields() -> dict[str, Any]:
    defaults = PPO()
    return {f.name: getattr(defaults, f.name) for f in dataclasses.fields(PPO)}


def lerax_case(
    name: str, hyperparameters: dict[str, Any], total_timesteps: int, callback: Any
) -> Case:
    env = CartPole()
    policy_key, learn_key = jr.split(jr.key(0), 2)
    policy = MLPActorCriticPolicy(env=env, key=policy_key)
    algo = PPO(**hyperparameters)
    steps = (total_timesteps // algo.steps_per_iteration) * algo.steps_per_iteration

    def run(seed: int):
        key = jr.fold_in(learn_key, seed)
        trained = algo.learn(env, policy, total_timesteps, key=key, callback=callback)
        return jax.block_until_ready(trained)

    return Case(name, steps, run)


def rejax_ppo(hyperparameters: dict[str, Any], steps: int) -> Any:
    """rejax's PPO on gymnax's CartPole-v1 with Lerax's `hyperparameters`, for
    exactly `steps` steps and with its evaluation switched off."""
    from rejax import PPO as RejaxPPO

    hp = {**_ppo_fields(), **hyperparameters}
    algo = RejaxPPO.create(
        env="CartPole-v1",
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
        num_envs=hp["num_envs"],
        num_steps=hp["num_steps"],
        num_epochs=hp["num_epochs"],
        num_minibatches=hp["num_minibatches"],
        learning_rate=hp["learning_rate"],
        max_grad_norm=hp["max_grad_norm"],
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        clip_eps=hp["clip_coef"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        # One evaluation chunk covering exactly `steps`, and no evaluation.
        total_timesteps=steps,
        eval_freq=steps,
    )
    return algo.replace(
        eval_callback=lambda algo, ts, rng: jnp.zeros(()),
        skip_initial_evaluation=True,
    )


def rejax_case(
    name: str, hyperparameters: dict[str, Any], total_timesteps: int
) -> Case:
    hp = {**_ppo_fields(), **hyperparameters}
    steps_per_iteration = hp["num_envs"] * hp["num_steps"]
    steps = (total_timesteps // steps_per_iteration) * steps_per_iteration
    train = jax.jit(rejax_ppo(hyperparameters, steps).train)

    def run(seed: int):
        return jax.block_until_ready(train(jax.random.PRNGKey(seed)))

    return Case(name, steps, run)


def same_program(callback: Any, other: Any) -> bool:
    """Whether PPO's defaults compile to the same XLA program with both callbacks.

    Compares the optimised HLO without its source-location metadata.
    """
    import re

    from lerax.algorithm._loop import run_loop
    from lerax.algorithm.interrupt import poll_every

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jr.key(0))
    total = jnp.asarray(2**16, jnp.int32)

    def program(cb) -> str:
        algorithm = PPO()
        compiled = run_loop.lower(
            algorithm,
            env,
            policy,
            cb,
            total,
            jr.key(1),
            poll_every=poll_every(algorithm.steps_per_iteration),
        )
        compiled = compiled.compile()
        text = getattr(compiled, "as_text", None) or compiled.compiled.as_text
        text = re.sub(r"metadata=\{[^}]*\}|, stack_frame_id=\d+", "", text())
        return re.sub(r"line=\d+ end_line=\d+ column=\d+ end_column=\d+", "", text)

    return program(callback) == program(other)


def time_round_robin(cases: list[Case], repeats: int, compile_repeats: int) -> None:
    """Compile every case (timing it), then time `repeats` rounds of runs."""
    first_calls: dict[str, list[float]] = {case.name: [] for case in cases}
    for _ in range(compile_repeats):
        for case in cases:
            jax.clear_caches()
            start = time.perf_counter()
            case.run(0)
            first_calls[case.name].append(time.perf_counter() - start)
    for case in cases:  # one untimed steady-state run each: warm caches
        case.run(0)
    for repeat in range(1, repeats + 1):
        for case in cases:
            start = time.perf_counter()
            case.run(repeat)
            case.times.append(time.perf_counter() - start)
    for case in cases:
        run_seconds = statistics.median(case.times)
        case.compile_seconds = statistics.median(
            first - run_seconds for first in first_calls[case.name]
        )


def overhead_percent(case: Case, base: Case) -> float:
    """Median over rounds of the case's time over the base's, as a percentage."""
    return statistics.median(_overheads(case, base))


def spread(case: Case, base: Case) -> str:
    """The interquartile range of the per-round overheads: how noisy the median is."""
    low, _, high = statistics.quantiles(_overheads(case, base), n=4)
    return f"[{low:+.1f}, {high:+.1f}]"


def _overheads(case: Case, base: Case) -> list[float]:
    return [100.0 * (t / b - 1.0) for t, b in zip(case.times, base.times, strict=True)]


def describe(hyperparameters: dict[str, Any]) -> str:
    hp = {**_ppo_fields(), **hyperparameters}
    return (
        f"{hp['num_envs']} envs x {hp['num_steps']} steps, {hp['num_epochs']} "
        f"epochs x {hp['num_minibatches']} minibatches"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 runs of 2**16 steps")
    parser.add_argument("--repeats", type=int, help="timed runs per case (>= 3)")
    parser.add_argument("--total-timesteps", type=int, help="env steps per run")
    parser.add_argument("--compile-repeats", type=int, help="compilations per case")
    parser.add_argument(
        "--no-rejax", action="store_true", help="skip the rejax comparison"
    )
    args = parser.parse_args()
    repeats = max(3, args.repeats or (3 if args.quick else 15))
    total = args.total_timesteps or (2**16 if args.quick else 2**17)
    compile_repeats = args.compile_repeats or (1 if args.quick else 3)

    jax.block_until_ready(jax.jit(lambda x: x + 1)(jnp.ones(())))  # start JAX
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}; "
        f"{total} env steps per run, median of {repeats} runs, compile: median "
        f"of {compile_repeats}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
    )
    checks: list[tuple[str, bool]] = []

    # 1. Lerax defaults, with and without callbacks.
    defaults: dict[str, Any] = {}
    cases = [
        lerax_case("(i) no callback", defaults, total, None),
        lerax_case("(ii) no-op callback", defaults, total, NoOpCallback()),
        lerax_case("(iii) host call / iteration", defaults, total, HostCall()),
        lerax_case("(iii) same, with host.call", defaults, total, HostModuleCall()),
        lerax_case(
            "  LoggingCallback, no-op backend",
            defaults,
            total,
            LoggingCallback([DropEverything()]),
        ),
    ]
    time_round_robin(cases, repeats, compile_repeats)
    base, noop, debug_call, host_call, _ = cases
    print(f"\nLerax PPO defaults on CartPole: {describe(defaults)}")
    print(
        f"  {'case':30} {'compile s':>10} {'steps/s':>10} {'overhead':>9} "
        f"{'quartiles':>14}"
    )
    for case in cases:
        overhead, quartiles = "", ""
        if case is not base:
            overhead = f"{overhead_percent(case, base):+8.2f}%"
            quartiles = spread(case, base)
        print(
            f"  {case.name:30} {case.compile_seconds:10.2f} "
            f"{case.steps_per_second:10,.0f} {overhead:>9} {quartiles:>14}"
        )
    identical = same_program(EmptyCallback(), NoOpCallback())
    print(
        f"  (ii) compiles to the same XLA program as (i): {'yes' if identical else 'no'}"
    )
    noop_overhead = overhead_percent(noop, base)
    debug_overhead = overhead_percent(debug_call, base)
    host_overhead = overhead_percent(host_call, base)
    checks += [
        (
            f"defaults >= {TARGET_STEPS_PER_SECOND:,} steps/s "
            f"({base.steps_per_second:,.0f})",
            base.steps_per_second >= TARGET_STEPS_PER_SECOND,
        ),
        (
            f"no-op callback overhead <= {TARGET_NOOP_OVERHEAD:g}% "
            f"({noop_overhead:+.2f}% measured"
            f"{'; same XLA program, so 0 % in fact' if identical else ''})",
            identical or noop_overhead <= TARGET_NOOP_OVERHEAD,
        ),
        (
            f"host call per iteration overhead <= {TARGET_HOST_OVERHEAD:g}%, "
            f"jax.debug.callback ({debug_overhead:+.2f}%)",
            debug_overhead <= TARGET_HOST_OVERHEAD,
        ),
        (
            f"host call per iteration overhead <= {TARGET_HOST_OVERHEAD:g}%, "
            f"lerax.host.call ({host_overhead:+.2f}%)",
            host_overhead <= TARGET_HOST_OVERHEAD,
        ),
    ]

    # 2. Lerax against rejax on the same hyper-parameters.
    try:
        import rejax  # noqa: F401

        have_rejax = not args.no_rejax
    except ImportError:
        have_rejax = False
        print(
            "\nrejax is not importable: no comparison "
            "(run with the benchmark venv, see benchmarks/README.md)"
        )
    if have_rejax:
        from importlib.metadata import version

        print(
            f"\nLerax {version('lerax')} vs rejax {version('rejax')}: PPO on "
            f"CartPole, same hyper-parameters, no callback"
        )
        print(f"  {'library':8} {'compile s':>10} {'steps/s':>10}")
        for label, hp in (
            ("rejax's CartPole config", REJAX_CARTPOLE),
            ("Lerax's defaults", defaults),
        ):
            pair = [
                lerax_case("lerax", hp, total, None),
                rejax_case("rejax", hp, total),
            ]
            time_round_robin(pair, repeats, compile_repeats)
            print(f"{label}: {describe(hp)}")
            for case in pair:
                print(
                    f"  {case.name:8} {case.compile_seconds:10.2f} "
                    f"{case.steps_per_second:10,.0f}"
                )
            ours, theirs = pair
            checks += [
                (
                    f"{label}: lerax steps/s >= rejax's "
                    f"({ours.steps_per_second:,.0f} vs {theirs.steps_per_second:,.0f})",
                    ours.steps_per_second >= theirs.steps_per_second,
                ),
                (
                    f"{label}: lerax compile <= rejax's "
                    f"({ours.compile_seconds:.2f} s vs {theirs.compile_seconds:.2f} s)",
                    ours.compile_seconds <= theirs.compile_seconds,
                ),
            ]

    print("\nTargets")
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")


if __name__ == "__main__":
    main()
