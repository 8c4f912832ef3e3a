"""The README's quick start: `tox -e demo` and `tox` as tox itself reads tox.ini.

Resolving the configuration with `tox config` (no environment is built) checks
that the two commands keep separate environment folders, so switching between
them never recreates the other, and that the demo installs the TensorBoard
server whose command it prints.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def tox_config(*envs: str, keys: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`{env: {key: value}}` as `tox config` resolves them for this checkout."""
    pytest.importorskip("tox", reason="tox is not installed (pip install tox)")
    output = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", ",".join(envs), "-k", *keys],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_COLOR": "1"},
    ).stdout
    config: dict[str, dict[str, str]] = {}
    env, key = "", ""
    for line in output.splitlines():
        if match := re.fullmatch(r"\[testenv:(.+)\]", line):
            env = match[1]
            config[env] = {}
        elif match := re.fullmatch(r"(\w+) =(.*)", line):
            key = match[1]
            config[env][key] = match[2].strip()
        elif line.startswith("  ") and env:
            config[env][key] += "\n" + line.strip()
    return config


def test_demo_and_the_test_suite_use_separate_environment_folders():
    envs = ("demo", "lint", "py311", "wheels", "docs")
    config = tox_config(*envs, keys=("env_dir",))
    folders = {env: config[env]["env_dir"] for env in envs}
    assert len(set(folders.values())) == len(envs), (
        f"two tox environments share a folder, so each recreates the other: {folders}"
    )


def test_demo_installs_the_tensorboard_server_and_prints_its_command(tmp_path):
    demo = tox_config("demo", keys=("deps", "commands"))["demo"]
    assert "plugins/lerax-tensorboard[server]" in demo["deps"]
    requirements = importlib.metadata.requires("lerax-tensorboard") or []
    server = [
        r.name
        for r in map(Requirement, requirements)
        if r.marker is not None and r.marker.evaluate({"extra": "server"})
    ]
    assert "tensorboard" in server, f"no [server] extra with tensorboard: {server}"

    # The demo's last command prints the TensorBoard command; run it here and
    # check that the program it names is the one installed next to Python.
    command = shlex.split(demo["commands"].splitlines()[-1])
    assert command[0] == "python"
    printed = subprocess.run(
        [sys.executable, *command[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed.rstrip().endswith("--logdir runs"), printed
    program = printed.split("view them with:")[1].split()[0]
    expected = Path(sys.executable).parent / "tensorboard"
    assert (tmp_path / program).resolve() == expected.resolve()
