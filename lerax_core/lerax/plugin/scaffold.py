"""`lerax plugins new NAME`: write a ready-to-install `lerax-NAME` plugin package."""

from importlib.resources import files
from pathlib import Path
from string import Template

from lerax import __version__

_LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "module.py.tmpl": "lerax_{name}/__init__.py",
    "test_module.py.tmpl": "tests/test_{name}.py",
}


def new_plugin(name: str, directory: Path) -> Path:
    """Create `directory / f"lerax-{name}"` and return it.

    The package has a pyproject with the `lerax` entry point, one module
    implementing a logging backend registered as `name`, a README and a test that
    runs the conformance kit. `name` must be a lowercase Python identifier.
    """
    if not (name.isidentifier() and name.islower()):
        raise ValueError(
            f"plugin name {name!r} must be a lowercase Python identifier, "
            f"e.g. 'csv' or 'my_tracker'"
        )
    root = directory / f"lerax-{name}"
    if root.exists():
        raise FileExistsError(
            f"{root} already exists; choose another name or directory"
        )
    values = {
        "name": name,
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
