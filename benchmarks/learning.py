"""Does an algorithm with its defaults learn CartPole? A learning check per seed.

Run: `python benchmarks/learning.py [--algorithm ppo|a2c|dqn] [--seeds 5]
[--set num_epochs=4 ...]`.

For every seed `s` (`policy_key, learn_key = jr.split(jr.key(s), 2)`, the policy
built from `policy_key`) it trains twice from scratch:

- `2**16` steps, reporting the final episode-return EMA: weight 0.1 on each
  iteration's mean return of the episodes that finished in it, started at the
  first such mean (the definition of `LoggingCallback`'s `episode/return_ema`);
- the budget in `BUDGETS` (2**17 steps for PPO), reporting the mean return of
  the greedy policy over 20 fresh episodes (at most 500 steps each).

Targets: EMA >= 150 after `2**16` steps; greedy mean >= 475 after `2**17` steps
for most seeds (PPO; A2C and DQN are held to the greedy target only, at the
budgets in `BUDGETS`). `--set name=value` overrides a field of the algorithm
(for tuning).
"""

import argparse
import ast
import time

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import random as jr

from lerax.algorithm import A2C, DQN, PPO
from lerax.callback import AbstractCallback
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy, MLPQPolicy

ALGORITHMS = {
    "ppo": (PPO, MLPActorCriticPolicy),
    "a2c": (A2C, MLPActorCriticPolicy),
    "dqn": (DQN, MLPQPolicy),
}
BUDGETS = {"ppo": 2**17, "a2c": 2**18, "dqn": 2**17}
"""Steps of the run whose greedy policy is evaluated."""

EMA_WEIGHT = 0.1
EVAL_EPISODES = 20


class _Finished(eqx.Module):
    returns: jax.Array
    count: jax.Array


class _Average(eqx.Module):
    ema: jax.Array
    seen: jax.Array


_FINAL_EMAS: list[float] = []


class ReturnEMA(AbstractCallback):
    """Track the episode-return EMA in the loop; hand it to the host at the end."""

    def reset(self, ctx, *, key):
        return _Average(jnp.zeros(()), jnp.zeros((), jnp.int32))

    def step_reset(self, ctx, *, key):
        return _Finished(jnp.zeros(()), jnp.zeros(()))

    def on_step(self, ctx, *, key):
        done = ctx.done.astype(jnp.float32)
        return _Finished(
            ctx.state.returns + done * ctx.episode_return, ctx.state.count + done
        )

    def on_iteration(self, ctx, *, key):
        returns, count = jnp.sum(ctx.step_state.returns), jnp.sum(ctx.step_state.count)
        mean = returns / jnp.maximum(count, 1.0)
        old = ctx.state
        blended = jnp.where(
            old.seen > 0, (1 - EMA_WEIGHT) * old.ema + EMA_WEIGHT * mean, mean
        )
        return _Average(jnp.where(count > 0, blended, old.ema), old.seen + (count > 0))

    def on_training_end(self, ctx, *, key):
        jax.debug.callback(lambda ema: _FINAL_EMAS.append(float(ema)), ctx.state.ema)
        return ctx.state


@eqx.filter_jit
def greedy_returns(env, policy, key):
    """Undiscounted returns of `EVAL_EPISODES` greedy episodes."""

    def episode(key):
        reset_key, step_key = jr.split(key)
        state, obs = env.reset(key=reset_key)

        def step(carry, key):
            state, obs, total, alive = carry
            state, obs, reward, terminated, truncated = env.step(
                state, policy.predict(obs), key=key
            )
            total = total + jnp.where(alive, reward, 0.0)
            return (state, obs, total, alive & ~(terminated | truncated)), None

        carry = (state, obs, jnp.zeros(()), jnp.asarray(True))
        (_, _, total, _), _ = jax.lax.scan(
            step, carry, jr.split(step_key, env.max_episode_steps)
        )
        return total

    return jax.vmap(episode)(jr.split(key, EVAL_EPISODES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="ppo")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--ema-only", action="store_true", help="only the 2**16-step runs (quick)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", dest="overrides"
    )
    args = parser.parse_args()
    overrides = {
        name: ast.literal_eval(value)
        for name, value in (item.split("=", 1) for item in args.overrides)
    }
    env = CartPole()
    algorithm, policy_class = ALGORITHMS[args.algorithm]
    budget = BUDGETS[args.algorithm]
    algo = algorithm(**overrides)
    settings = ", ".join(f"{k}={v}" for k, v in overrides.items())
    print(f"{algorithm.__name__}({settings})")
    greedy_label = f"greedy @2^{budget.bit_length() - 1}"
    print(f"{'seed':>4} {'EMA @2^16':>10} {greedy_label:>13} {'seconds':>8}")
    emas, evals = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        start = time.perf_counter()
        policy_key, learn_key = jr.split(jr.key(seed), 2)
        policy = policy_class(env=env, key=policy_key)
        algo.learn(env, policy, 2**16, key=learn_key, callback=ReturnEMA())
        if args.ema_only:
            greedy = float("nan")
        else:
            trained = algo.learn(env, policy, budget, key=learn_key)
            eval_key = jr.key(1000 + seed)
            greedy = float(jnp.mean(greedy_returns(env, trained, eval_key)))
        jax.effects_barrier()
        emas.append(_FINAL_EMAS[-1])
        evals.append(greedy)
        seconds = time.perf_counter() - start
        print(f"{seed:4d} {emas[-1]:10.1f} {greedy:13.1f} {seconds:8.1f}", flush=True)
    ema_ok = sum(e >= 150 for e in emas)
    eval_ok = sum(g >= 475 for g in evals)
    print(f"EMA >= 150 at 2^16: {ema_ok}/{len(emas)} seeds (min {min(emas):.1f})")
    if not args.ema_only:
        print(f"{greedy_label} >= 475: {eval_ok}/{len(evals)} seeds")


if __name__ == "__main__":
    main()
