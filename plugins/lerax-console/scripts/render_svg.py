"""Render the console display of a short real training as an SVG, for the docs.

    python plugins/lerax-console/scripts/render_svg.py console.svg

Trains PPO on CartPole with a `ConsoleBackend` (drawn live when standard output is
a terminal), then prints the backend's final display on a recording console and
writes it with rich's `export_svg`.
"""

import argparse
import io
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the SVG")
    parser.add_argument(
        "--total-timesteps", type=int, default=2**14, help="env steps to train for"
    )
    parser.add_argument("--width", type=int, default=100, help="columns of the picture")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import jax
    from rich.console import Console

    from lerax.algorithm import PPO
    from lerax.callback import LoggingCallback
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy
    from lerax_console import ConsoleBackend

    policy_key, learn_key = jax.random.split(jax.random.key(args.seed))
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=policy_key)
    algorithm = PPO(num_envs=4, num_steps=64, num_epochs=4, num_minibatches=2)
    backend = ConsoleBackend(total_timesteps=args.total_timesteps)
    with LoggingCallback([backend], name="PPO-CartPole") as logger:
        algorithm.learn(
            env, policy, args.total_timesteps, key=learn_key, callback=logger
        )

    picture = Console(
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system="truecolor",
        width=args.width,
    )
    picture.print(backend)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(picture.export_svg(title="lerax-console"), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
