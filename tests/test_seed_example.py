"""The seed example runs unchanged and what it trains learns."""

import os
import runpy
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "seed_example.py"
COPY = REPO / "examples" / "seed_example.py"


def seed_example() -> Path:
    """The shared reference example when it sits beside the checkout, else the copy."""
    return SHARED if SHARED.exists() else COPY


@pytest.mark.skipif(
    not SHARED.exists(),
    reason=(
        "the reference seed example (../shared/seed_example.py, kept by the project "
        "beside the repository) is not in this checkout; examples/seed_example.py "
        "is tested on its own below"
    ),
)
def test_the_repository_copy_is_the_reference_example():
    assert COPY.read_text() == SHARED.read_text()


@pytest.mark.slow
def test_seed_example_runs_unchanged_and_return_rises(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)  # TensorBoardBackend writes to ./runs/<run name>
    namespace = runpy.run_path(str(seed_example()), run_name="__main__")
    policy = namespace["policy"]
    assert type(policy).__name__ == "MLPActorCriticPolicy"

    (run_dir,) = (tmp_path / "runs").iterdir()
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    returns = [event.value for event in events.Scalars("episode/return_ema")]
    steps = [event.step for event in events.Scalars("episode/return_ema")]
    assert steps == sorted(steps) and steps[-1] == 2**16
    from lerax.algorithm import PPO

    assert len(returns) == 2**16 // PPO().steps_per_iteration, "one point per iteration"
    early, late = np.mean(returns[:5]), np.mean(returns[-5:])
    assert late > early + 100, (
        f"episode/return_ema should rise: {early:.1f} -> {late:.1f}"
    )
    assert returns[-1] >= 150, "the seed example must end with an EMA return >= 150"
    assert os.listdir(run_dir), "event files were written"
