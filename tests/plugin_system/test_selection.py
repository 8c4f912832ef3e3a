"""LERAX_PLUGINS and LERAX_DISABLE_PLUGINS choose which plugins load."""

import warnings

import pytest

from lerax.callback import make
from lerax.plugin import UnknownNameError, get_registry
from lerax.plugin.registry import PluginWarning


@pytest.fixture
def three_plugins(fake_environment, backend_plugin):
    """`alpha`, `beta` and `gamma` installed, and nothing else."""
    backend_plugin("lerax-gamma", "gamma")


def test_disable_skips_the_named_plugins(three_plugins, monkeypatch):
    monkeypatch.setenv("LERAX_DISABLE_PLUGINS", "alpha, beta")
    registry = get_registry()
    assert registry.plugins["alpha"].status == "disabled"
    assert registry.plugins["beta"].status == "disabled"
    assert "alpha" not in registry.names
    assert registry.plugins["gamma"].status == "ok"


def test_using_a_disabled_plugin_names_the_variable(three_plugins, monkeypatch):
    monkeypatch.setenv("LERAX_DISABLE_PLUGINS", "alpha")
    with pytest.raises(UnknownNameError, match="disabled by LERAX_DISABLE_PLUGINS"):
        make("alpha")


def test_only_loads_just_the_listed_plugins(three_plugins, monkeypatch):
    monkeypatch.setenv("LERAX_PLUGINS", "alpha")
    registry = get_registry()
    assert sorted(registry.names) == ["alpha"]
    assert registry.plugins["gamma"].status == "disabled"
    with pytest.raises(UnknownNameError, match="not listed in LERAX_PLUGINS"):
        make("gamma")


def test_empty_only_list_loads_none(three_plugins, monkeypatch):
    monkeypatch.setenv("LERAX_PLUGINS", "")
    registry = get_registry()
    assert registry.names == {}
    assert {info.status for info in registry.plugins.values()} == {"disabled"}


@pytest.mark.parametrize("variable", ["LERAX_PLUGINS", "LERAX_DISABLE_PLUGINS"])
def test_unknown_names_in_the_variables_are_warned_once(
    three_plugins, monkeypatch, variable
):
    monkeypatch.setenv(variable, "alpha, gama")
    with pytest.warns(PluginWarning) as caught:
        registry = get_registry()
    (warning,) = caught
    message = str(warning.message)
    assert f"{variable} names 'gama'" in message
    assert "Did you mean 'gamma'?" in message
    assert "Installed plugins: alpha, beta, gamma" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_registry()  # discovered once per process: no second warning
        make("alpha") if variable == "LERAX_PLUGINS" else make("beta")
    assert registry is get_registry()


def test_known_names_are_not_warned_about(three_plugins, monkeypatch):
    monkeypatch.setenv("LERAX_PLUGINS", "alpha,beta")
    monkeypatch.setenv("LERAX_DISABLE_PLUGINS", "beta")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_registry().load_all()
