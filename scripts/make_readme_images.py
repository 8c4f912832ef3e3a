"""Make the README's pictures from real runs: the console display and the return curve.

    python scripts/make_readme_images.py [--out docs/images]

Runs the seed example (`examples/seed_example.py`, unchanged) in a temporary
directory, plots its TensorBoard `episode/return` curve with the tensorboard
plugin's `plot_return.py`, and renders the console display of a training of the
same length with the console plugin's `render_svg.py`. Needs the console and
tensorboard plugins with their test extras (tensorboard, matplotlib).
"""

import argparse
import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        runpy.run_path(str(REPO / "examples" / "seed_example.py"), run_name="__main__")
        subprocess.run(
            [
                sys.executable,
                str(REPO / "plugins/lerax-tensorboard/scripts/plot_return.py"),
                "runs",
                "-o",
                str(out / "episode_return.png"),
            ],
            check=True,
        )
    subprocess.run(
        [
            sys.executable,
            str(REPO / "plugins/lerax-console/scripts/render_svg.py"),
            str(out / "console.svg"),
            "--total-timesteps",
            str(2**16),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"wrote {out / 'episode_return.png'} and {out / 'console.svg'}")


if __name__ == "__main__":
    main()
