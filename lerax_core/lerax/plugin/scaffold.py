"""`lerax plugins new NAME`: write a ready-to-install `lerax-NAME` plugin package."""

import re
import warnings
from importlib.resources import files
from pathlib import Path
from string import Template

from lerax import __version__
from lerax.plugin.registry import FIRST_PARTY, PluginWarning, get_registry

MAX_LENGTH = 40
"""Longest plugin name accepted: it names a directory, a package and a module."""

_NAME = re.compile(r"[a-z][a-z0-9_]*")

_LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "module.py.tmpl": "lerax_{name}/__init__.py",
    "test_module.py.tmpl": "tests/test_{name}.py",
}


def distribution_name(name: str) -> str:
    """The normalised distribution of plugin `name`: `my_tracker` is `lerax-my-tracker`."""
    return "lerax-" + re.sub(r"[-_.]+", "-", name)


def check_name(name: str) -> None:
    """Refuse names that would not build, import, or would replace Lerax's own.

    Warns (`PluginWarning`) when an installed plugin already uses `name`.
    """
    if not _NAME.fullmatch(name) or name.endswith("_") or "__" in name:
        raise ValueError(
            f"plugin name {name!r} must be a lowercase Python identifier of ASCII "
            f"letters, digits and single underscores, starting with a letter, e.g. "
            f"'csv' or 'my_tracker'"
        )
    if len(name) > MAX_LENGTH:
        raise ValueError(
            f"plugin name {name!r} is {len(name)} characters long; keep it to "
            f"{MAX_LENGTH} or fewer"
        )
    if name in FIRST_PARTY:
        raise ValueError(
            f"{name!r} is the name of Lerax's own {FIRST_PARTY[name]}, which a new "
            f"plugin may not replace; choose another name, e.g. 'my_{name}'"
        )
    registry = get_registry()
    users = sorted(
        {
            info.distribution or "?"
            for info in registry.discovered.values()
            if info.name == name
        }
        | ({registry.names[name].plugin} if name in registry.names else set())
    )
    if users:
        warnings.warn(
            f"{name!r} is already used by the installed plugin(s) "
            f"{', '.join(users)}: installed together, the new plugin would lose "
            f"the name. Choose another name unless you mean to replace it.",
            PluginWarning,
            stacklevel=3,
        )


def new_plugin(name: str, directory: Path) -> Path:
    """Create `directory / distribution_name(name)` and return it.

    The package has a pyproject with the `lerax` entry point, one module
    implementing a logging backend registered as `name`, a README and a test that
    runs the conformance kit. `name` must be a lowercase ASCII identifier that
    is not one of Lerax's own plugins.
    """
    check_name(name)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"--directory {str(directory)!r} is not a directory")
    dist = distribution_name(name)
    root = directory / dist
    if root.exists():
        raise FileExistsError(
            f"{root} already exists; choose another name or directory"
        )
    values = {
        "name": name,
        "dist": dist,
        "class_name": "".join(part.title() for part in name.split("_")),
        "lerax_version": ".".join(__version__.split(".")[:2]),
    }
    templates = files("lerax.plugin") / "template"
    for source, target in _LAYOUT.items():
        path = root / target.format(name=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = Template((templates / source).read_text(encoding="utf-8"))
        path.write_text(text.substitute(values), encoding="utf-8")
    (root / f"lerax_{name}" / "py.typed").touch()
    return root
