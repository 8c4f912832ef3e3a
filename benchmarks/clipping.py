"""What gradient clipping costs in PPO's minibatch updates on XLA:CPU.

Run from the repository root:

    python benchmarks/clipping.py            # 9 timed rounds
    python benchmarks/clipping.py --quick    # 3 rounds

Lerax's PPO clips gradients by their global norm, as Stable-Baselines3 and
CleanRL do; rejax clips each gradient element (`optax.clip`) with the same
`max_grad_norm`. This script times `PPO._update`, the epochs of shuffled
minibatch steps on one rollout, with three optimisers: global-norm clipping and
Adam (Lerax), element-wise clipping and Adam (rejax) and Adam alone, on rejax's
CartPole config and on Lerax's defaults, and prints microseconds per minibatch
step. The batch is random: the timing depends on its shapes, not its values.
Every updated parameter is returned, so XLA can drop none of the work.

See `benchmarks/README.md` for why global-norm clipping costs more than its
arithmetic on a two-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax import random as jr
from speed import REJAX_CARTPOLE, describe

from lerax.algorithm import PPO
from lerax.algorithm.ppo import _Batch
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

UPDATES_PER_RUN = 100


def optimisers(algo: PPO) -> dict[str, optax.GradientTransformation]:
    adam = optax.adam(algo.learning_rate, eps=1e-5)
    return {
        "global norm + Adam (Lerax)": algo._optimizer(algo.learning_rate),
        "per element + Adam (rejax)": optax.chain(optax.clip(algo.max_grad_norm), adam),
        "Adam, no clipping": adam,
    }


def random_batch(size: int, *, key: jax.Array) -> _Batch:
    keys = jr.split(key, 5)
    return _Batch(
        observation=jr.normal(keys[0], (size, 4)),
        action=jr.bernoulli(keys[1], 0.5, (size,)).astype(jnp.int32),
        log_prob=jnp.log(0.5) + 0.01 * jr.normal(keys[2], (size,)),
        advantage=jr.normal(keys[3], (size,)),
        returns=jr.normal(keys[4], (size,)),
    )


def updates(
    algo: PPO, optimiser: optax.GradientTransformation, batch: _Batch
) -> Callable[[Any, jax.Array], Any]:
    """`UPDATES_PER_RUN` calls of `PPO._update` in one jitted scan."""

    @eqx.filter_jit
    def run(policy, key):
        params, static = eqx.partition(policy, eqx.is_array)
        opt_state = optimiser.init(eqx.filter(policy, eqx.is_inexact_array))

        def one(carry, key):
            params, opt_state = carry
            policy, opt_state, log = algo._update(
                eqx.combine(params, static), opt_state, optimiser, batch, key=key
            )
            return (eqx.filter(policy, eqx.is_array), opt_state), log["policy_loss"]

        (params, _), losses = jax.lax.scan(
            one, (params, opt_state), jr.split(key, UPDATES_PER_RUN)
        )
        return params, losses

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 9")
    rounds = 3 if parser.parse_args().quick else 9

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jr.key(0))
    print(f"jax {jax.__version__}; {UPDATES_PER_RUN} updates per run, {rounds} rounds")
    print(f"  {'optimiser':30} {'us/minibatch':>13} {'vs Adam alone':>14}")
    for label, hyperparameters in (
        ("rejax's CartPole config", REJAX_CARTPOLE),
        ("Lerax's defaults", {}),
    ):
        algo = PPO(**hyperparameters)
        batch = random_batch(algo.steps_per_iteration, key=jr.key(1))
        runs = {
            name: updates(algo, optimiser, batch)
            for name, optimiser in optimisers(algo).items()
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():  # compile and warm up
            jax.block_until_ready(run(policy, jr.key(0)))
        for round_ in range(1, rounds + 1):
            for name, run in runs.items():
                start = time.perf_counter()
                jax.block_until_ready(run(policy, jr.key(round_)))
                times[name].append(time.perf_counter() - start)
        steps = UPDATES_PER_RUN * algo.num_epochs * algo.num_minibatches
        micros = {name: 1e6 * statistics.median(t) / steps for name, t in times.items()}
        adam_alone = micros["Adam, no clipping"]
        print(f"{label}: {describe(hyperparameters)}")
        for name, us in micros.items():
            print(f"  {name:30} {us:13.1f} {100 * (us / adam_alone - 1):+13.1f}%")


if __name__ == "__main__":
    main()
