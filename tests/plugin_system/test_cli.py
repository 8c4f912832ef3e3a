"""`lerax plugins` lists every discovered plugin, as a table or as JSON."""

import json
import shutil
import subprocess
import sys

import pytest


def run(
    *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LERAX_")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "lerax", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_json_has_one_object_per_plugin():
    result = run("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"console", "tensorboard", "wandb", "progress", "jsonl"} <= set(rows)
    jsonl = rows["jsonl"]
    assert jsonl["distribution"] == "lerax-jsonl"
    assert jsonl["version"] == "0.1.0"
    assert jsonl["status"] == "ok" and jsonl["error"] is None
    assert jsonl["hooks"] == ["lerax_register_backends"]
    assert jsonl["names"][0]["name"] == "jsonl"
    assert jsonl["names"][0]["kind"] == "backend"


def test_table_shows_names_status_and_disabled_reason():
    result = run(
        "plugins", env_extra={"LERAX_DISABLE_PLUGINS": "wandb", "COLUMNS": "300"}
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if " jsonl " in line)
    assert "lerax-jsonl 0.1.0" in row and "jsonl (backend)" in row and "ok" in row
    wandb = next(line for line in result.stdout.splitlines() if " wandb " in line)
    assert "disabled by LERAX_DISABLE_PLUGINS" in wandb


def test_plain_table_without_rich():
    code = (
        "import sys; sys.modules['rich'] = None; "
        "from lerax.plugin.cli import main; main(['plugins'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["plugin", "distribution", "names", "hooks", "status"]
    row = next(line for line in lines if line.startswith("jsonl "))
    assert "lerax-jsonl 0.1.0" in row and row.rstrip().endswith("ok")
    assert "\x1b[" not in result.stdout and "┃" not in result.stdout


@pytest.mark.skipif(shutil.which("lerax") is None, reason="console script not on PATH")
def test_console_script_matches_module():
    script = subprocess.run(
        ["lerax", "plugins", "--json"], capture_output=True, text=True, timeout=120
    )
    assert json.loads(script.stdout) == json.loads(run("plugins", "--json").stdout)


def test_broken_plugin_row_carries_its_error_and_exit_status(tmp_path):
    site = tmp_path / "site"
    info = site / "lerax_broken-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lerax-broken\nVersion: 0.0.1\n"
    )
    (info / "entry_points.txt").write_text("[lerax]\nbroken = lerax_broken_xyz\n")
    import os

    result = run(
        "plugins",
        "--json",
        env_extra={
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
        },
    )
    assert result.returncode == 1
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["broken"]["status"] == "broken"
    assert "lerax_broken_xyz" in rows["broken"]["error"]
    assert rows["jsonl"]["status"] == "ok"
