"""Does early stopping at eval return 475 stop PPO's defaults before 2**18 steps?

Run from the repository root:

    python benchmarks/early_stop.py            # seeds 0..4
    python benchmarks/early_stop.py --seeds 10

For each seed, PPO with its defaults trains on CartPole for at most 2**18
steps with `EvalCallback(every=16, episodes=16, stop_at=475)` (the defaults of
`"eval"`, plus the threshold). Prints where each run stopped and why; the target
is a stop before 2**18 steps on at least 4 of 5 seeds. All seeds share one
compilation (`stop_at` is an array in the loop).
"""

from __future__ import annotations

import argparse

import jax

from lerax.algorithm import PPO
from lerax.callback import EvalCallback
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy
from lerax.testing import RecordingBackend

STEPS = 2**18


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    env, algo = CartPole(), PPO()
    stopped = 0
    print(
        f"PPO defaults, CartPole, at most {STEPS} steps, stop_at=475 (16 episodes every 16 iterations)"
    )
    for seed in range(args.seeds):
        policy_key, learn_key = jax.random.split(jax.random.key(seed))
        policy = MLPActorCriticPolicy(env=env, key=policy_key)
        evaluation = EvalCallback(every=16, episodes=16, stop_at=475)
        recorder = RecordingBackend()
        algo.learn(env, policy, STEPS, key=learn_key, callback=[evaluation, recorder])
        step, reason = recorder.ends[0]
        last = [
            m["eval/return_mean"]
            for _, m in recorder.iterations
            if "eval/return_mean" in m
        ]
        stopped += reason == "stopped" and step < STEPS
        print(
            f"seed {seed}: {reason} at step {step} (evaluations: {[round(x) for x in last]})"
        )
    verdict = "PASS" if stopped >= (4 * args.seeds + 4) // 5 else "FAIL"
    print(
        f"stopped before {STEPS} steps on {stopped}/{args.seeds} seeds: {verdict} (target >= 4/5)"
    )


if __name__ == "__main__":
    main()
