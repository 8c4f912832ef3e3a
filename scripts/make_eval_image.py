"""Draw the evaluation curve of a real run against its training return.

    python scripts/make_eval_image.py [--out docs/images]

Trains PPO with its defaults on CartPole for 2**17 steps with an `EvalCallback`
(16 greedy episodes every 2 iterations) and a `RecordingBackend`, then plots
`eval/return_mean` (with one standard deviation) and the training
`episode/return` moving average against environment steps, as
`eval_curve.png`. Prints the run's figures. Needs matplotlib.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lerax.algorithm import PPO
    from lerax.callback import EvalCallback
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy
    from lerax.testing import RecordingBackend

    policy_key, learn_key = jax.random.split(jax.random.key(args.seed))
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=policy_key)
    evaluation = EvalCallback(every=2, episodes=16)
    recorder = RecordingBackend()
    PPO().learn(env, policy, 2**17, key=learn_key, callback=[evaluation, recorder])

    train = [(s, m["episode/return"]) for s, m in recorder.iterations]
    evals = [
        (s, m["eval/return_mean"], m["eval/return_std"])
        for s, m in recorder.iterations
        if "eval/return_mean" in m
    ]
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=120)
    axes.plot(
        *zip(*train, strict=True), label="training episode/return (moving average)"
    )
    steps, means, stds = zip(*evals, strict=True)
    axes.errorbar(
        steps,
        means,
        yerr=stds,
        fmt="o-",
        ms=3,
        capsize=2,
        label="eval/return_mean ± std (16 greedy episodes)",
    )
    axes.set_xlabel("environment steps")
    axes.set_ylabel("episode return")
    axes.set_title("PPO defaults on CartPole: evaluation against training")
    axes.legend(loc="lower right", fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "eval_curve.png"
    figure.savefig(path)
    first_solved = next((s for s, m, _ in evals if m >= 500), None)
    print(f"wrote {path}")
    print(
        f"evaluations: {len(evals)}; best {evaluation.best_return} at step "
        f"{evaluation.best_timestep}; first 500 at step {first_solved}; "
        f"final training EMA {train[-1][1]:.1f}"
    )


if __name__ == "__main__":
    main()
