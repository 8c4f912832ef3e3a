"""A run killed with `kill -9` at any moment resumes from its latest complete
checkpoint and finishes with the policy of the uninterrupted run."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import pytest

import lerax
from lerax.callback.checkpoint import latest_checkpoint
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import jax

    import lerax
    from lerax.algorithm import PPO
    from lerax.callback import CheckpointCallback
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    directory, out = Path(sys.argv[1]), sys.argv[2]
    resume = directory if any(p.name.isdigit() for p in directory.glob("*")) else None
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=4, num_steps=16, num_epochs=1, num_minibatches=1)
    checkpoints = CheckpointCallback(directory, every=1, keep=2)
    policy = algo.learn(
        env,
        policy,
        60 * algo.steps_per_iteration,
        key=jax.random.key(1),
        callback=[checkpoints],
        resume_from=resume,
    )
    lerax.save(policy, out)
    """
)


def run(script: Path, directory: Path, out: Path, **popen) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONHASHSEED="0")
    return subprocess.Popen(
        [sys.executable, str(script), str(directory), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **popen,
    )


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()[-3000:]


def complete(directory: Path) -> int:
    try:
        return len([p for p in directory.iterdir() if p.name.isdigit()])
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("script") / "train.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def uninterrupted(script, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reference")
    finish(run(script, root / "checkpoints", root / "policy.lerax"))
    return root / "policy.lerax"


def like():
    return MLPActorCriticPolicy(env=CartPole(), key=jax.random.key(5))


@pytest.mark.parametrize(
    ("after_written", "delay"), [(1, 0.0), (2, 0.05), (4, 0.013), (8, 0.2)]
)
def test_kill_and_resume(
    script, uninterrupted, tmp_path, after_written, delay, trees_equal
):
    directory, out = tmp_path / "checkpoints", tmp_path / "policy.lerax"
    process = run(script, directory, out)
    deadline = time.monotonic() + 300
    while complete(directory) < min(after_written, 2) and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.005)
    if after_written > 2:  # keep=2: wait for the step instead
        while process.poll() is None:
            try:
                if latest_checkpoint(directory)[0] >= after_written:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.005)
    time.sleep(delay)  # somewhere in training or in a checkpoint write
    if process.poll() is not None:
        pytest.fail("the run finished before it could be killed: make it longer")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()
    latest, _ = latest_checkpoint(directory)  # what survived is complete
    assert latest >= 1
    finish(run(script, directory, out))  # resumes from `latest`
    trees_equal(lerax.load(out, like=like()), lerax.load(uninterrupted, like=like()))
