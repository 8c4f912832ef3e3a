"""DQN's training speed beside rejax 0.1.3's DQN, on equal hyper-parameters.

Run: `.venv-bench/bin/python benchmarks/dqn_speed.py [--rounds 3]` (rejax and
gymnax==0.0.9 installed, see benchmarks/README.md).

Both train CartPole-v1 for `2**16` steps with 10 envs, one step per env then 5
gradient steps of 100 transitions per iteration, a 50k buffer filled 5k steps
before learning, a 64x64 ReLU Q network and double DQN. Steps/s is the median
over `--rounds` runs after compilation, timed round-robin; rejax's periodic
evaluation is off so that both only train.
"""

import argparse
import statistics
import time

import jax
from jax import random as jr

from lerax.algorithm import DQN
from lerax.env.classic_control import CartPole
from lerax.policy import MLPQPolicy

STEPS = 2**16


def lerax_run():
    env = CartPole()
    algorithm = DQN(num_envs=10, num_steps=1, num_updates=5, batch_size=100,
                    buffer_size=50_000, learning_starts=5_000)  # fmt: skip
    policy = MLPQPolicy(env=env, key=jr.key(0))

    def run():
        trained = algorithm.learn(env, policy, STEPS, key=jr.key(1))
        jax.block_until_ready(trained)

    return run


def rejax_run():
    from rejax import DQN as RejaxDQN

    algo = RejaxDQN.create(
        env="CartPole-v1",
        agent="QNetwork",
        agent_kwargs={"activation": "relu"},  # rejax fixes 64x64
        num_envs=10,
        num_epochs=5,
        batch_size=100,
        buffer_size=50_000,
        fill_buffer=5_000,
        learning_rate=1e-3,
        max_grad_norm=10,
        total_timesteps=STEPS,
        eval_freq=STEPS + 1,
        skip_initial_evaluation=True,
        ddqn=True,
    )
    train = jax.jit(algo.train)

    def run():
        jax.block_until_ready(train(jr.key(1)))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cases = {"lerax DQN": lerax_run(), "rejax 0.1.3 DQN": rejax_run()}
    for run in cases.values():
        run()  # compile
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"jax {jax.__version__}; {STEPS} steps per run, median of {args.rounds}")
    for name, seconds in times.items():
        print(f"  {name:18s} {STEPS / statistics.median(seconds):10,.0f} steps/s")


if __name__ == "__main__":
    main()
