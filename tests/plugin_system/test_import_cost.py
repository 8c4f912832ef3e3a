"""`import lerax` stays light: no plugin, no heavy optional dependency."""

import json
import subprocess
import sys

HEAVY = {"wandb", "tensorboardX", "tensorboard", "rich"}
PLUGINS = {
    "lerax_console",
    "lerax_tensorboard",
    "lerax_wandb",
    "lerax_progress",
    "lerax_jsonl",
}


def imported_after(statement: str, lines: int = 1):
    """Top-level modules imported by `statement` in a fresh interpreter.

    With `lines=2`, also what `statement` printed as JSON before them.
    """
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.splitlines()
    modules = {name.split(".")[0] for name in json.loads(out[-1])}
    return modules if lines == 1 else (json.loads(out[-2]), modules)


def test_import_lerax_loads_no_plugin_and_no_heavy_module():
    modules = imported_after("import lerax")
    assert not modules & HEAVY
    assert not modules & PLUGINS
    assert "jax" not in modules, "the top-level package should not even need JAX"


def test_training_modules_stay_free_of_optional_dependencies():
    modules = imported_after(
        "import lerax.algorithm, lerax.callback, lerax.env.classic_control, lerax.policy"
    )
    assert not modules & HEAVY
    assert not modules & PLUGINS


def test_listing_plugins_imports_plugin_modules_but_not_their_libraries():
    modules = imported_after(
        "from lerax.plugin.registry import installed_entry_points, get_registry; "
        "get_registry().load_all(); "
        "print(json.dumps([ep.module for ep in installed_entry_points()]))",
        lines=2,
    )
    plugins, modules = modules
    assert {name.split(".")[0] for name in plugins} <= modules
    assert not modules & HEAVY
    assert "jax" not in modules
