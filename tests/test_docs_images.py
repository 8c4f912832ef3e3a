"""The README's pictures and words agree with each other and with what the demo gives.

`scripts/make_readme_images.py` makes `docs/images/console.svg` and
`episode_return.png` from one real run of the seed example and records that run in
`docs/images/demo_figures.json`. These tests check that the pictures are the ones
recorded (hashes), that the SVG shows the recorded figures, that the README,
getting-started and the console plugin's pages say what the figures say, that the
recorded run used today's defaults, and (the last, which trains) that the seed
example still ends where the pictures say. When one fails, run
`python scripts/make_readme_images.py` and update the words it names.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
IMAGES = REPO / "docs" / "images"
PAGES = [REPO / "README.md", REPO / "docs" / "getting-started.md"]
CONSOLE_PAGES = [
    REPO / "docs" / "plugins" / "console.md",
    REPO / "plugins" / "lerax-console" / "README.md",
]
REGENERATE = "run `python scripts/make_readme_images.py` and commit what it writes"
CLAIM = re.compile(
    r"climbs from about (\d+) to about (\d+) in (\d+) iterations", re.IGNORECASE
)


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return json.loads((IMAGES / "demo_figures.json").read_text(encoding="utf-8"))


def words(path: Path) -> str:
    """The page's text with every run of whitespace made one space."""
    return " ".join(path.read_text(encoding="utf-8").split())


def test_the_pictures_are_the_recorded_run(figures):
    for name, digest in figures["sha256"].items():
        actual = hashlib.sha256((IMAGES / name).read_bytes()).hexdigest()
        assert actual == digest, (
            f"{name} is not the picture of the recorded run; {REGENERATE}"
        )


def test_the_console_picture_shows_the_recorded_figures(figures):
    svg = html.unescape((IMAGES / "console.svg").read_text(encoding="utf-8"))
    svg = svg.replace("\u00a0", " ")
    total = f"{figures['total_timesteps']:,}"
    shown = figures["console_svg"]["text"]
    assert f"iteration {figures['iterations']}" in shown[0]
    bar = shown[1]
    assert bar.startswith("done ") and f"100%  {total}/{total} steps" in bar
    # the table shows the moving average the picture plots, as return_ema
    assert figures["episode_return"]["tag"] == "episode/return_ema"
    (returned,) = [line for line in shown if re.search(r"\breturn_ema\s", line)]
    assert returned.split()[-1] == figures["episode_return"]["final_as_shown"]
    assert not any("return_mean" in line for line in shown), "deprecated names shown"
    for line in shown:  # what the SVG draws, line by line
        for word in line.split():
            assert word in svg, f"console.svg does not show {word!r} of {line!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_pages_say_what_the_pictures_show(page, figures):
    text = words(page)
    claims = CLAIM.findall(text)
    assert claims, f"{page.name} no longer says how episode/return_ema climbs"
    recorded = figures["episode_return"]
    expected = (
        str(round(recorded["first"])),
        str(round(recorded["final"])),
        str(figures["iterations"]),
    )
    assert set(claims) == {expected}, (
        f"{page.name} says episode/return_ema climbs from about {claims[0][0]} to about "
        f"{claims[0][1]} in {claims[0][2]} iterations; the pictures show "
        f"{expected[0]} to {expected[1]} in {expected[2]}"
    )
    if recorded["best"] < 499.5:
        assert not re.search(r"maximum of 500|reaches 500|return 499", text), (
            f"{page.name} claims a return of 500; the demo's best is "
            f"{recorded['best']:.1f}"
        )
    exponent = round(math.log2(figures["total_timesteps"]))
    assert 2**exponent == figures["total_timesteps"]
    if page.name == "README.md":
        assert f"2^{exponent} steps" in text


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=lambda page: page.parent.name)
def test_the_console_pages_show_the_recorded_plain_log(page, figures):
    assert "\n".join(figures["plain_log"]) in page.read_text(encoding="utf-8"), (
        f"the plain log in {page.relative_to(REPO)} is not the recorded run's; copy "
        f"plain_log from docs/images/demo_figures.json"
    )


def test_the_recorded_run_used_todays_seed_example_and_defaults(figures):
    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole

    recorded = figures["hyperparameters"]
    seed_example = (REPO / "examples" / "seed_example.py").read_text()
    assert f"total_timesteps=2**{round(math.log2(figures['total_timesteps']))}" in (
        seed_example.replace(" ", "")
    ), f"the seed example no longer trains {figures['total_timesteps']} steps"
    algorithm, env = PPO(), CartPole()
    assert recorded["algorithm/class"] == type(algorithm).__name__
    assert recorded["env/class"] == type(env).__name__
    changed = {}
    for key, value in recorded.items():
        group, _, field = key.partition("/")
        owner = {"algorithm": algorithm, "env": env}.get(group)
        if owner is None or field == "class" or not hasattr(owner, field):
            continue
        now = getattr(owner, field)
        if isinstance(value, float) and not isinstance(now, bool):
            same = math.isclose(float(now), value, rel_tol=1e-6)
        else:
            same = now == value
        if not same:
            changed[key] = (value, now)
    assert not changed, f"defaults changed since the pictures {changed}; {REGENERATE}"
    assert figures["steps_per_iteration"] == algorithm.steps_per_iteration
    assert figures["iterations"] == (
        figures["total_timesteps"] // algorithm.steps_per_iteration
    )


SEED_RUN = """
import json, runpy, sys
from pathlib import Path
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

runpy.run_path(sys.argv[1], run_name="__main__")
(run,) = Path("runs").iterdir()
events = EventAccumulator(str(run), size_guidance={"scalars": 0})
events.Reload()
print(json.dumps([[e.step, e.value] for e in events.Scalars("episode/return_ema")]))
"""


def test_the_seed_example_still_ends_where_the_pictures_say(figures, tmp_path):
    """Trains the seed example (about 20 s). The curve may differ a little between
    machines and library versions, so the final return gets 15 % of slack."""
    result = subprocess.run(
        [sys.executable, "-c", SEED_RUN, str(REPO / "examples" / "seed_example.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    curve = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(curve) == figures["iterations"]
    assert curve[-1][0] == figures["final_step"]
    final, recorded = curve[-1][1], figures["episode_return"]["final"]
    assert math.isclose(final, recorded, rel_tol=0.15), (
        f"the seed example now ends at episode/return_ema {final:.1f}; the pictures "
        f"show {recorded:.1f}; {REGENERATE}"
    )


def test_the_many_runs_picture_is_the_recorded_run_and_the_page_says_so():
    regenerate = (
        "run `python scripts/make_many_runs_image.py` and commit what it writes"
    )
    record = json.loads((IMAGES / "many_runs.json").read_text(encoding="utf-8"))
    picture = hashlib.sha256((IMAGES / "many_runs.png").read_bytes()).hexdigest()
    assert picture == record["picture_sha256"], f"many_runs.png changed: {regenerate}"
    page = words(REPO / "docs" / "many-runs.md")
    claim = f"{record['final_mean']:.1f} ± {record['final_std']:.1f}"
    assert claim in page, f"docs/many-runs.md should say {claim!r}: {regenerate}"
    assert f"{record['members']} seeds" in page.lower().replace("eight", "8")
