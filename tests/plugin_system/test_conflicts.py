"""Names two plugins claim: first-party names are never taken over, conflicts are loud."""

import pytest

from lerax.callback import make
from lerax.plugin import PluginRegistry, UnknownNameError, get_registry, lookup
from lerax.plugin.cli import main, plugin_rows
from lerax.plugin.registry import PluginWarning


def test_impostor_registering_a_first_party_name_is_refused(
    only_fake_plugins, backend_plugin
):
    backend_plugin("lerax-tensorboard", "tensorboard")
    backend_plugin("aaa-evil", "aaa", "tensorboard")  # its entry point sorts first
    registry = get_registry()
    assert registry.names["tensorboard"].plugin == "tensorboard"
    evil = registry.plugins["aaa"]
    assert evil.status == "broken"
    assert "belongs to Lerax's own lerax-tensorboard" in evil.reason
    assert registry.plugins["tensorboard"].status == "ok"


def test_impostor_with_a_first_party_entry_point_name_is_listed_not_loaded(
    only_fake_plugins, backend_plugin
):
    backend_plugin("lerax-tensorboard", "tensorboard")
    backend_plugin("aaa-evil", "tensorboard")  # the same entry point name
    with pytest.warns(PluginWarning, match="aaa-evil"):
        built = make("tensorboard")
    assert type(built).__module__ == "fake_lerax_tensorboard_tensorboard"
    rows = [(row["name"], row["distribution"], row["status"]) for row in plugin_rows()]
    assert ("tensorboard", "lerax-tensorboard", "ok") in rows
    assert ("tensorboard", "aaa-evil", "broken") in rows
    assert main(["plugins"]) == 1


def test_first_party_name_is_never_served_by_an_impostor(
    only_fake_plugins, backend_plugin
):
    backend_plugin("aaa-evil", "aaa", "wandb", "evil_extra")
    with (
        pytest.raises(UnknownNameError, match="pip install lerax-wandb"),
        pytest.warns(PluginWarning, match="'aaa'"),
    ):
        lookup("wandb")
    info = get_registry().plugins["aaa"]
    assert info.status == "broken" and "lerax-wandb" in info.reason


def test_impostor_class_is_not_imported_as_a_first_party_class(
    only_fake_plugins, fake_distribution
):
    fake_distribution(
        "aaa-evil",
        "aaa",
        "aaa_evil_exports",
        """
        from lerax import hookimpl
        from lerax.plugin import AbstractLoggingBackend

        class TensorBoardBackend(AbstractLoggingBackend):
            def lerax_on_training_start(self, run_name, hyperparameters): ...
            def lerax_on_iteration(self, step, metrics): ...
            def lerax_close(self): ...

        @hookimpl
        def lerax_register_backends(register):
            register("tb", TensorBoardBackend)
        """,
    )
    import lerax.callback

    with pytest.raises(ImportError, match="pip install lerax-tensorboard"):
        lerax.callback.TensorBoardBackend  # noqa: B018


def test_a_name_belongs_to_the_plugin_whose_entry_point_it_is(
    only_fake_plugins, backend_plugin
):
    backend_plugin("lerax-jsonl", "jsonl")
    backend_plugin("aaa-clash", "aaa", "jsonl", "mine")
    registry = get_registry()
    assert registry.names["jsonl"].plugin == "jsonl"
    clash = registry.plugins["aaa"]
    assert clash.status == "ok", "it loses the name, not its other names"
    assert [r.name for r in clash.registrations] == ["mine"]
    assert clash.conflicts == [
        "'jsonl' is also registered by plugin 'jsonl', which keeps it"
    ]
    (row,) = [row for row in plugin_rows() if row["name"] == "aaa"]
    assert row["conflicts"] == clash.conflicts
    assert main(["plugins"]) == 1, "a conflict fails the listing's exit status"


def test_the_same_answer_whether_or_not_everything_is_loaded(
    only_fake_plugins, backend_plugin
):
    backend_plugin("lerax-jsonl", "jsonl")
    backend_plugin("aaa-clash", "aaa", "jsonl")
    fast = get_registry().find("jsonl")
    full = PluginRegistry().names["jsonl"]
    assert fast is not None and (fast.plugin, full.plugin) == ("jsonl", "jsonl")


def test_other_names_go_to_the_entry_point_that_sorts_first_and_warn(
    only_fake_plugins, backend_plugin
):
    backend_plugin("lerax-bbb", "bbb", "shared")
    backend_plugin("lerax-aaa", "aaa", "shared")
    with pytest.warns(PluginWarning, match="'shared' is also registered by plugin"):
        assert lookup("shared").plugin == "aaa"
    assert get_registry().plugins["bbb"].conflicts


def test_a_name_reserved_for_a_disabled_plugin_is_served_by_nobody(
    only_fake_plugins, backend_plugin, monkeypatch
):
    monkeypatch.setenv("LERAX_DISABLE_PLUGINS", "jsonl")
    backend_plugin("lerax-jsonl", "jsonl")
    backend_plugin("aaa-clash", "aaa", "jsonl")
    with pytest.raises(UnknownNameError, match="disabled by LERAX_DISABLE_PLUGINS"):
        lookup("jsonl")
    assert "jsonl" not in PluginRegistry().names


def test_conflicts_can_be_caught_by_the_names_lerax_plugin_exports(
    only_fake_plugins, backend_plugin
):
    import lerax.plugin

    assert {"PluginWarning", "PluginConflictError"} <= set(lerax.plugin.__all__)
    backend_plugin("lerax-tensorboard", "tensorboard")
    backend_plugin("aaa-evil", "tensorboard")  # the same entry point name
    with pytest.warns(lerax.plugin.PluginWarning, match="aaa-evil"):
        make("tensorboard")
    (impostor,) = [
        info
        for info in get_registry().plugins.values()
        if info.distribution == "aaa-evil"
    ]
    assert isinstance(impostor.error, lerax.plugin.PluginConflictError)
