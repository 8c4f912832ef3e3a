"""Build the five wheels, install them alone into a clean venv, and use them.

Run by `tox -e wheels`. Proves that the distributions are complete without the
source tree: `lerax plugins` lists the four first-party plugins and the seed
example trains, from a directory outside the checkout.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECTS = [
    REPO,
    REPO / "plugins" / "lerax-console",
    REPO / "plugins" / "lerax-tensorboard",
    REPO / "plugins" / "lerax-wandb",
    REPO / "plugins" / "lerax-progress",
]
FIRST_PARTY = {"console", "tensorboard", "wandb", "progress"}


def run(*command: str | Path, cwd: Path | None = None) -> str:
    print("+", " ".join(map(str, command)), flush=True)
    return subprocess.run(
        [str(c) for c in command], check=True, cwd=cwd, text=True, capture_output=True
    ).stdout


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="lerax-wheels-"))
    dist = work / "dist"
    for project in PROJECTS:
        run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, project)
    wheels = sorted(dist.glob("*.whl"))
    names = sorted(w.name.split("-")[0] for w in wheels)
    assert names == sorted(["lerax", "lerax_console", "lerax_tensorboard",
                            "lerax_wandb", "lerax_progress"]), names  # fmt: skip
    for wheel in wheels:
        listing = run(sys.executable, "-m", "zipfile", "-l", wheel)
        assert "py.typed" in listing, f"{wheel.name} lacks py.typed"

    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", *wheels)

    outside = work / "outside"  # no source tree on the path
    outside.mkdir()
    rows = json.loads(run(python, "-m", "lerax", "plugins", "--json", cwd=outside))
    found = {row["name"]: row for row in rows}
    assert FIRST_PARTY <= set(found), f"plugins listed: {sorted(found)}"
    assert all(found[name]["status"] == "ok" for name in FIRST_PARTY), rows
    for row in rows:
        print(
            f"  {row['name']:12} {row['distribution']} {row['version']} {row['status']}"
        )
    origin = run(python, "-c", "import lerax; print(lerax.__file__)", cwd=outside)
    assert str(REPO) not in origin, f"lerax imported from the checkout: {origin}"

    seed = REPO.parent / "shared" / "seed_example.py"
    seed = seed if seed.exists() else REPO / "examples" / "seed_example.py"
    shutil.copy(seed, outside / "seed_example.py")
    run(python, "seed_example.py", cwd=outside)
    assert any((outside / "runs").iterdir()), (
        "the seed example wrote no TensorBoard run"
    )
    print(
        f"OK: {len(wheels)} wheels install alone; plugins listed; seed example trained"
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
