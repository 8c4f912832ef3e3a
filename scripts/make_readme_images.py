"""Make the README's pictures from one real run of the seed example, and record it.

    python scripts/make_readme_images.py [--out docs/images]

Runs `examples/seed_example.py` unchanged in a temporary directory, then from that
run: renders its console backend's final display as `console.svg`, plots the
`episode/return_ema` curve that its TensorBoard backend wrote (read back with
TensorBoard's reader, by the tensorboard plugin's `plot_return.py`) as
`episode_return.png`, and writes `demo_figures.json`: the run's hyper-parameters,
its figures (iterations, first, last and best return) and the pictures' hashes,
which `tests/test_docs_images.py` checks the README and getting-started against.
Needs the console and tensorboard plugins with TensorBoard and matplotlib
(`pip install "./plugins/lerax-tensorboard[test]"`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import platform
import runpy
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SEED_EXAMPLE = REPO / "examples" / "seed_example.py"
PLOT = REPO / "plugins" / "lerax-tensorboard" / "scripts" / "plot_return.py"
TAG = "episode/return_ema"


def read_run(run_dir: Path) -> tuple[list[tuple[int, float]], dict[str, Any]]:
    """`(step, value)` of `TAG` and the hyper-parameters, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    curve = [(event.step, event.value) for event in events.Scalars(TAG)]
    hyperparameters: dict[str, Any] = {}
    for content in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        if data.HasField("session_start_info"):
            for name, value in data.session_start_info.hparams.items():
                kind = value.WhichOneof("kind")
                hyperparameters[name] = getattr(value, kind)
    return curve, dict(sorted(hyperparameters.items()))


@contextlib.contextmanager
def consoles_made() -> Any:
    """Yield a list that collects every `ConsoleBackend` built meanwhile (the seed
    example's is reachable only through its closed `LoggingCallback`)."""
    from lerax_console import ConsoleBackend

    made: list[ConsoleBackend] = []
    init = ConsoleBackend.__init__

    def recording_init(self: ConsoleBackend, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    ConsoleBackend.__init__ = recording_init  # type: ignore[method-assign]
    try:
        yield made
    finally:
        ConsoleBackend.__init__ = init  # type: ignore[method-assign]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--width", type=int, default=100, help="columns of the SVG")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from rich.console import Console

    from lerax_console import format_value

    start = Path.cwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        try:
            log = io.StringIO()  # off a terminal, the console prints plain lines
            with contextlib.redirect_stdout(log), consoles_made() as made:
                runpy.run_path(str(SEED_EXAMPLE), run_name="__main__")
            (run_dir,) = Path("runs").iterdir()
            curve, hyperparameters = read_run(run_dir)
            subprocess.run(
                [
                    sys.executable,
                    str(PLOT),
                    "runs",
                    "-o",
                    str(out / "episode_return.png"),
                    "--tag",
                    TAG,
                ],
                check=True,
            )
        finally:
            os.chdir(start)

    (console,) = made
    picture = Console(
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system="truecolor",
        width=args.width,
    )
    picture.print(console)
    shown = picture.export_text(clear=False)
    (out / "console.svg").write_text(
        picture.export_svg(title="lerax-console"), encoding="utf-8"
    )

    finite = [(step, value) for step, value in curve if math.isfinite(value)]
    best_step, best = max(finite, key=lambda point: point[1])
    total = int(hyperparameters["run/total_timesteps"])
    figures = {
        "made_by": "scripts/make_readme_images.py",
        "run": run_dir.name,
        "total_timesteps": total,
        "steps_per_iteration": curve[0][0],
        "iterations": len(curve),
        "final_step": curve[-1][0],
        "episode_return": {
            "tag": TAG,
            "first": round(finite[0][1], 2),
            "final": round(curve[-1][1], 2),
            "best": round(best, 2),
            "best_step": best_step,
            "final_as_shown": format_value(curve[-1][1]),
        },
        "console_svg": {"width": args.width, "text": shown.rstrip("\n").splitlines()},
        "plain_log": log.getvalue().rstrip("\n").splitlines(),
        "hyperparameters": hyperparameters,
        "sha256": {
            name: sha256(out / name) for name in ("console.svg", "episode_return.png")
        },
        "versions": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            **{name: version(name) for name in ("jax", "lerax", "lerax-console")},
        },
    }
    (out / "demo_figures.json").write_text(
        json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(
        f"wrote console.svg, episode_return.png and demo_figures.json to {out}: "
        f"{figures['iterations']} iterations, {TAG} "
        f"{figures['episode_return']['first']} -> {figures['episode_return']['final']}"
        f" (best {best:.1f})"
    )


if __name__ == "__main__":
    main()
