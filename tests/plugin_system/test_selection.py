"""LERAX_PLUGINS and LERAX_DISABLE_PLUGINS choose which plugins load."""

import pytest

from lerax.callback import make
from lerax.plugin import UnknownNameError, get_registry


def test_disable_skips_the_named_plugins(monkeypatch):
    monkeypatch.setenv("LERAX_DISABLE_PLUGINS", "jsonl, console")
    registry = get_registry()
    assert registry.plugins["jsonl"].status == "disabled"
    assert registry.plugins["console"].status == "disabled"
    assert "jsonl" not in registry.names
    assert registry.plugins["tensorboard"].status == "ok"


def test_using_a_disabled_plugin_names_the_variable(monkeypatch):
    monkeypatch.setenv("LERAX_DISABLE_PLUGINS", "jsonl")
    with pytest.raises(UnknownNameError, match="disabled by LERAX_DISABLE_PLUGINS"):
        make("jsonl")


def test_only_loads_just_the_listed_plugins(monkeypatch):
    monkeypatch.setenv("LERAX_PLUGINS", "jsonl")
    registry = get_registry()
    assert sorted(registry.names) == ["jsonl"]
    assert registry.plugins["wandb"].status == "disabled"
    with pytest.raises(UnknownNameError, match="not listed in LERAX_PLUGINS"):
        make("wandb")


def test_empty_only_list_loads_none(monkeypatch):
    monkeypatch.setenv("LERAX_PLUGINS", "")
    registry = get_registry()
    assert registry.names == {}
    assert {info.status for info in registry.plugins.values()} == {"disabled"}
