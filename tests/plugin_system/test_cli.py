"""`lerax plugins` lists every discovered plugin, as a table or as JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lerax import __version__
from lerax.plugin import registry
from lerax.plugin.cli import main

ROW_KEYS = {
    "name",
    "distribution",
    "version",
    "names",
    "hooks",
    "status",
    "error",
    "conflicts",
    "load_seconds",
    "slow",
}


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LERAX_")}
    return subprocess.run(
        [sys.executable, "-m", "lerax", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def listing(capsys, *args: str) -> tuple[int, str]:
    code = main(["plugins", *args])
    return code, capsys.readouterr().out


def test_json_has_one_object_per_plugin(fake_environment, capsys):
    code, out = listing(capsys, "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"alpha", "beta"}
    alpha = rows["alpha"]
    assert set(alpha) == ROW_KEYS
    assert (alpha["distribution"], alpha["version"]) == ("lerax-alpha", "0.0.1")
    assert alpha["status"] == "ok" and alpha["error"] is None
    assert alpha["hooks"] == ["lerax_register_backends"]
    assert alpha["names"] == [
        {"name": "alpha", "kind": "backend", "description": "a test backend"}
    ]
    assert alpha["conflicts"] == [] and not alpha["slow"]


def test_table_shows_names_status_and_disabled_reason(
    fake_environment, capsys, monkeypatch
):
    monkeypatch.setenv("LERAX_DISABLE_PLUGINS", "beta")
    monkeypatch.setenv("COLUMNS", "300")
    code, out = listing(capsys)
    assert code == 0
    alpha = next(line for line in out.splitlines() if "alpha " in line)
    assert "lerax-alpha 0.0.1" in alpha and "alpha (backend)" in alpha
    assert alpha.rstrip().endswith("ok")
    beta = next(line for line in out.splitlines() if "beta " in line)
    assert "disabled by LERAX_DISABLE_PLUGINS" in beta


def test_plain_table_without_rich(fake_environment, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)  # import rich fails
    code, out = listing(capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["plugin", "distribution", "names", "hooks", "status"]
    row = next(line for line in lines if line.startswith("alpha "))
    assert "lerax-alpha 0.0.1" in row and row.rstrip().endswith("ok")
    assert "\x1b[" not in out and "┃" not in out


def test_narrow_terminal_keeps_words_whole(fake_environment, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    _, out = listing(capsys)
    assert max(map(len, out.splitlines())) <= 80
    assert "lerax-alpha" in out and "alpha (backend)" in out


def test_broken_plugin_row_carries_its_error_and_exit_status(
    fake_environment, fake_distribution, capsys
):
    fake_distribution("lerax-broken", "broken", "lerax_broken_xyz")
    code, out = listing(capsys, "--json")
    assert code == 1
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["broken"]["status"] == "broken"
    assert "lerax_broken_xyz" in rows["broken"]["error"]
    assert rows["alpha"]["status"] == "ok"


HOSTILE = """
from lerax import hookimpl

@hookimpl
def lerax_register_backends(register):
    register("[b]bold", dict, "[/x] \\x1b]0;pwned\\x07 \\x1b[31mred")
    raise RuntimeError("bad [/x] markup [red]and\\x1b[2J escapes")
"""


@pytest.mark.parametrize("rich", [True, False])
def test_plugin_text_is_escaped_never_interpreted(
    fake_environment, fake_distribution, capsys, monkeypatch, rich
):
    if not rich:
        monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setenv("COLUMNS", "300")
    fake_distribution("lerax-hostile", "hostile", "lerax_hostile", HOSTILE)
    fake_distribution(
        "lerax-odd",
        "odd",
        "lerax_odd_names",
        HOSTILE.replace("raise", "# raise").replace("[b]bold", "[b]odd[/b]\\x1b[5m"),
    )
    code, out = listing(capsys)
    assert code == 1
    assert "[b]odd[/b]\\x1b[5m (backend)" in out
    assert "bad [/x] markup [red]and\\x1b[2J escapes" in out
    assert "\x1b" not in out, "terminal escape sequences must not pass through"


def test_slow_plugin_is_flagged_in_the_listing(
    fake_environment, fake_distribution, capsys, monkeypatch
):
    monkeypatch.setattr(registry, "SLOW_LOAD_SECONDS", 0.05)
    monkeypatch.setenv("COLUMNS", "300")
    fake_distribution(
        "lerax-slow", "slow", "lerax_slow_cli", "import time; time.sleep(0.1)\n"
    )
    code, out = listing(capsys)
    assert code == 0
    slow = next(line for line in out.splitlines() if line.startswith("slow "))
    assert "slow: 0.1 s to load" in slow
    code, out = listing(capsys, "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["slow"]["slow"] and rows["slow"]["load_seconds"] >= 0.1


def test_version_and_bare_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"lerax {__version__}"
    assert main([]) == 0
    assert "plugins" in capsys.readouterr().out


def test_module_prints_json_rows_whatever_is_installed():
    result = run("plugins", "--json")
    assert result.returncode in (0, 1), result.stderr
    rows = json.loads(result.stdout)
    assert all(set(row) == ROW_KEYS for row in rows)
    assert run("--version").stdout.strip() == f"lerax {__version__}"


def test_console_script_matches_module():
    script = Path(sys.executable).with_name("lerax")
    if not script.exists():
        pytest.skip(
            f"the lerax console script is not installed beside {sys.executable}"
        )
    result = subprocess.run(
        [str(script), "plugins", "--json"], capture_output=True, text=True, timeout=120
    )

    def rows(out: str) -> list[dict]:
        return [{**row, "load_seconds": None} for row in json.loads(out)]

    assert rows(result.stdout) == rows(run("plugins", "--json").stdout)
