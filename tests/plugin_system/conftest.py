"""Fixtures that make throwaway plugin distributions visible to importlib.metadata."""

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from lerax.plugin import registry


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test discovers plugins anew, with the selection variables unset."""
    monkeypatch.delenv("LERAX_PLUGINS", raising=False)
    monkeypatch.delenv("LERAX_DISABLE_PLUGINS", raising=False)
    monkeypatch.setattr(registry, "_registry", None)
    yield
    registry._registry = None


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch) -> Callable[..., Path]:
    """Install a plugin distribution by writing its `*.dist-info` onto `sys.path`.

    `fake_distribution("lerax-broken", "broken", "module_name", source)` writes the
    module (when `source` is given) and an entry point `broken = module_name` in
    the group `lerax`, exactly as pip would leave them.
    """

    def install(dist: str, entry_point: str, module: str, source: str | None = None):
        root = tmp_path / "site"
        root.mkdir(exist_ok=True)
        info = root / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n"
        )
        (info / "entry_points.txt").write_text(f"[lerax]\n{entry_point} = {module}\n")
        if source is not None:
            (root / f"{module}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(root))
        return root

    return install
