"""Fixtures that make throwaway plugin distributions visible to importlib.metadata.

Tests that must not depend on which plugins happen to be installed use
`only_fake_plugins`: discovery then sees the distributions written by
`fake_distribution` and nothing else.
"""

import importlib.metadata
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from lerax.plugin import registry

BACKEND_PLUGIN = """
from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend

class {cls}(AbstractLoggingBackend):
    def lerax_on_training_start(self, run_name, hyperparameters): ...
    def lerax_on_iteration(self, step, metrics): ...
    def lerax_close(self): ...

@hookimpl
def lerax_register_backends(register):
    for name in {names!r}:
        register(name, {cls}, "a test backend")
"""


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test discovers plugins anew, with the selection variables unset."""
    monkeypatch.delenv("LERAX_PLUGINS", raising=False)
    monkeypatch.delenv("LERAX_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(registry, "_registry", None)
    yield
    registry._registry = None


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A directory on `sys.path` that fake distributions are installed into."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def fake_distribution(site) -> Callable[..., Path]:
    """Install a plugin distribution by writing its `*.dist-info` onto `sys.path`.

    `fake_distribution("lerax-broken", "broken", "module_name", source)` writes the
    module (when `source` is given) and an entry point `broken = module_name` in
    the group `lerax`, exactly as pip would leave them. Modules written are
    forgotten by `sys.modules` after the test.
    """
    written: list[str] = []

    def install(dist: str, entry_point: str, module: str, source: str | None = None):
        info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n"
        )
        entry_points = info / "entry_points.txt"
        lines = entry_points.read_text() if entry_points.exists() else "[lerax]\n"
        entry_points.write_text(lines + f"{entry_point} = {module}\n")
        if source is not None:
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            written.append(module)
        return site

    yield install
    for module in written:
        sys.modules.pop(module, None)


@pytest.fixture
def backend_plugin(fake_distribution) -> Callable[..., Path]:
    """`backend_plugin(dist, entry_point, *names)`: a working plugin registering `names`."""

    def install(dist: str, entry_point: str, *names: str) -> Path:
        module = f"fake_{dist.replace('-', '_')}_{entry_point}"
        cls = "".join(part.title() for part in module.split("_")) + "Backend"
        source = BACKEND_PLUGIN.format(cls=cls, names=list(names or [entry_point]))
        return fake_distribution(dist, entry_point, module, source)

    return install


@pytest.fixture
def only_fake_plugins(site, monkeypatch) -> Path:
    """Discovery sees only the fake distributions, not what is really installed."""

    def entry_points() -> list[importlib.metadata.EntryPoint]:
        return [
            entry_point
            for dist in importlib.metadata.distributions(path=[str(site)])
            for entry_point in dist.entry_points
            if entry_point.group == registry.ENTRY_POINT_GROUP
        ]

    monkeypatch.setattr(registry, "installed_entry_points", entry_points)
    return site


@pytest.fixture
def fake_environment(only_fake_plugins, backend_plugin) -> Path:
    """Only two plugins installed: `lerax-alpha` (`alpha`) and `lerax-beta` (`beta`)."""
    backend_plugin("lerax-alpha", "alpha")
    return backend_plugin("lerax-beta", "beta")
