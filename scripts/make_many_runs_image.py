"""Make the "Many runs" page's picture from one real run of 8 members.

    python scripts/make_many_runs_image.py [--out docs/images]

Trains PPO's defaults on CartPole as 8 members (8 seeds, `2**17` steps each) in
one `learn` with the TensorBoard backend, reads back what it wrote with
TensorBoard's own reader (a directory per member and `aggregate`), and plots
every member's `episode/return_ema` with the aggregate run's mean +- std band as
`many_runs.png`. `many_runs.json` records the run and its figures, which
`tests/test_docs_images.py` checks the page's words against. Needs the
tensorboard plugin with TensorBoard and matplotlib
(`pip install "./plugins/lerax-tensorboard[test]"`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAG = "episode/return_ema"
MEMBERS = 8
STEPS = 2**17


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def train(log_dir: Path) -> None:
    import jax

    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.logging import LoggingCallback
    from lerax.policy import MLPActorCriticPolicy
    from lerax_tensorboard import TensorBoardBackend

    env = CartPole()
    policy_key, learn_key = jax.random.split(jax.random.key(0))
    policy = MLPActorCriticPolicy(env=env, key=policy_key)
    keys = jax.random.split(learn_key, MEMBERS)
    with LoggingCallback([TensorBoardBackend(log_dir)], name="eight-seeds") as log:
        PPO().learn(env, policy, STEPS, key=keys, callback=log)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with tempfile.TemporaryDirectory() as work:
        log_dir = Path(work) / "eight-seeds"
        train(log_dir)
        members = [scalars(log_dir / f"member-{i}", TAG) for i in range(MEMBERS)]
        mean = scalars(log_dir / "aggregate", TAG)
        std = scalars(log_dir / "aggregate", f"{TAG}_std")

    figure, axes = plt.subplots(figsize=(7, 4), dpi=120)
    for i, curve in enumerate(members):
        steps, values = zip(*curve, strict=True)
        axes.plot(steps, values, lw=0.8, alpha=0.6, label="members" if i == 0 else None)
    steps = np.array([s for s, _ in mean])
    centre = np.array([v for _, v in mean])
    spread = np.array([v for _, v in std])
    axes.fill_between(steps, centre - spread, centre + spread, alpha=0.25,
                      color="black", label="mean ± std")  # fmt: skip
    axes.plot(steps, centre, color="black", lw=2, label="mean (aggregate run)")
    axes.set_xlabel("environment steps (per member)")
    axes.set_ylabel(TAG)
    axes.set_title(f"PPO on CartPole, {MEMBERS} seeds in one learn call")
    axes.legend(loc="lower right")
    figure.tight_layout()
    picture = out / "many_runs.png"
    figure.savefig(picture)

    finals = [curve[-1][1] for curve in members]
    record = {
        "members": MEMBERS,
        "steps_per_member": STEPS,
        "tag": TAG,
        "iterations": len(mean),
        "final_mean": round(centre[-1], 1),
        "final_std": round(spread[-1], 1),
        "final_min": round(min(finals), 1),
        "final_max": round(max(finals), 1),
        "picture_sha256": hashlib.sha256(picture.read_bytes()).hexdigest(),
    }
    (out / "many_runs.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
