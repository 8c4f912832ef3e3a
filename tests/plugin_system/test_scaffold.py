"""`lerax plugins new NAME` writes a package that installs, passes its tests and trains."""

import os
import subprocess
import sys

import pytest

from lerax.plugin.cli import main
from lerax.plugin.registry import PluginWarning
from lerax.plugin.scaffold import new_plugin


@pytest.mark.slow
def test_generated_plugin_installs_passes_its_tests_and_trains(tmp_path):
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "lerax",
            "plugins",
            "new",
            "shout",
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    root = tmp_path / "lerax-shout"
    assert (root / "lerax_shout" / "py.typed").exists()

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--target", str(site), str(root)],
        check=True, timeout=600,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    env = {k: v for k, v in env.items() if not k.startswith("LERAX_")}

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(root / "tests")],
        capture_output=True, text=True, env=env, cwd=root, timeout=600,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout

    train = """
import jax
from lerax.algorithm import PPO
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy
env = CartPole()
algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
algo.learn(env, policy, 3 * algo.steps_per_iteration, key=jax.random.key(1), callback="shout")
"""
    trained = subprocess.run(
        [sys.executable, "-c", train],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    lines = [line for line in trained.stdout.splitlines() if line.startswith("[shout]")]
    assert lines[0].startswith("[shout] run PPO-CartPole-")
    assert [line.split()[2] for line in lines[1:4]] == ["32", "64", "96"]
    assert lines[-1] == "[shout] done at step 96"


@pytest.mark.parametrize(
    "name",
    ["Bad", "has-dash", "1st", "", "ñame", "\uff43\uff53\uff56", "x__y", "trailing_"],
)
def test_invalid_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="lowercase Python identifier of ASCII"):
        new_plugin(name, tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_very_long_name_is_refused_with_a_message(tmp_path):
    with pytest.raises(ValueError, match="300 characters long"):
        new_plugin("x" * 300, tmp_path)


@pytest.mark.parametrize("name", ["console", "tensorboard", "wandb", "progress"])
def test_first_party_names_are_refused(only_fake_plugins, tmp_path, name):
    with pytest.raises(ValueError, match=f"Lerax's own lerax-{name}"):
        new_plugin(name, tmp_path)


def test_a_name_already_installed_is_warned_about(fake_environment, tmp_path):
    with pytest.warns(PluginWarning, match="'alpha' is already used by .*lerax-alpha"):
        new_plugin("alpha", tmp_path)
    assert (tmp_path / "lerax-alpha").is_dir(), "a warning, not a refusal"


def test_the_distribution_name_is_normalised(only_fake_plugins, tmp_path):
    root = new_plugin("my_tracker", tmp_path)
    assert root.name == "lerax-my-tracker"
    pyproject = (root / "pyproject.toml").read_text()
    assert 'name = "lerax-my-tracker"' in pyproject
    assert 'my_tracker = "lerax_my_tracker"' in pyproject
    assert (root / "lerax_my_tracker" / "__init__.py").exists()
    assert '"lerax-my-tracker"' in (root / "tests" / "test_my_tracker.py").read_text()


def test_the_readme_documents_the_backend_options(only_fake_plugins, tmp_path):
    root = new_plugin("csv", tmp_path)
    readme = (root / "README.md").read_text()
    assert "## Options" in readme
    module = (root / "lerax_csv" / "__init__.py").read_text()
    for option in ("keys", "stream"):
        assert f"`{option}`" in readme and f"{option}:" in module


def test_a_file_as_directory_is_a_usage_error_not_a_traceback(
    only_fake_plugins, tmp_path, capsys
):
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(SystemExit) as exited:
        main(["plugins", "new", "csv", "--directory", str(afile)])
    assert exited.value.code == 2
    assert "is not a directory" in capsys.readouterr().err


def test_existing_directory_is_not_overwritten(only_fake_plugins, tmp_path):
    new_plugin("twice", tmp_path)
    with pytest.raises(FileExistsError, match="lerax-twice"):
        new_plugin("twice", tmp_path)
