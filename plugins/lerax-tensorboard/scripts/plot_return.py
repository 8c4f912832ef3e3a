"""Plot `episode/return_ema` against the environment step from TensorBoard event files.

    python plot_return.py runs/ -o return.png

`LOGDIR` is a run directory or a directory of runs (one line per run). The event
files are read with TensorBoard's own reader, so this needs the `tensorboard` and
`matplotlib` packages; iterations in which no episode had finished yet (NaN) are
left out.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

TAG = "episode/return_ema"


def read_curves(
    logdir: str | Path, tag: str = TAG
) -> dict[str, list[tuple[int, float]]]:
    """`{run: [(step, value), ...]}` for every run under `logdir` that logged `tag`.

    Runs are named by their path relative to `logdir` (`.` for `logdir` itself);
    non-finite values are dropped.
    """
    from tensorboard.backend.event_processing.event_multiplexer import (
        EventMultiplexer,
    )

    if not Path(logdir).is_dir():
        raise FileNotFoundError(f"no such directory: {str(logdir)!r}")
    multiplexer = EventMultiplexer(size_guidance={"scalars": 0})  # 0: keep all
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    curves = {}
    for run, tags in sorted(multiplexer.Runs().items()):
        if tag in tags.get("scalars", []):
            events = multiplexer.Scalars(run, tag)
            curves[run] = [
                (event.step, event.value)
                for event in events
                if math.isfinite(event.value)
            ]
    return curves


def plot(
    curves: dict[str, list[tuple[int, float]]], output: str | Path, tag: str = TAG
):
    """Save one line per run of `curves` to the image file `output`."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4), dpi=120)
    for run, points in curves.items():
        steps, values = zip(*points, strict=True) if points else ((), ())
        axes.plot(steps, values, label=run)
    axes.set_xlabel("environment step")
    axes.set_ylabel(tag)
    axes.grid(alpha=0.3)
    if len(curves) > 1:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(output)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", help="a run directory or a directory of runs")
    parser.add_argument("-o", "--output", default="return.png", help="image file")
    parser.add_argument("--tag", default=TAG, help=f"scalar to plot (default {TAG})")
    args = parser.parse_args(argv)
    curves = read_curves(args.logdir, args.tag)
    if not curves:
        parser.exit(1, f"no run under {args.logdir} logged the scalar {args.tag!r}\n")
    plot(curves, args.output, args.tag)
    points = sum(len(points) for points in curves.values())
    print(f"wrote {args.output}: {len(curves)} run(s), {points} points of {args.tag}")


if __name__ == "__main__":
    main()
