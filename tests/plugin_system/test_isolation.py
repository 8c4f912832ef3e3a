"""A plugin that fails to import or registers badly breaks nothing but itself."""

import sys

import pytest

from lerax.callback import make
from lerax.plugin import get_registry, lookup
from lerax.plugin import registry as registry_module
from lerax.plugin.registry import PluginWarning

GOOD_BACKEND = """
from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend

class FineBackend(AbstractLoggingBackend):
    def lerax_on_training_start(self, run_name, hyperparameters): ...
    def lerax_on_iteration(self, step, metrics): ...
    def lerax_close(self): ...

@hookimpl
def lerax_register_backends(register):
    register("fine", FineBackend, "works")
"""


def test_plugin_that_fails_to_import_is_listed_as_broken(
    fake_environment, fake_distribution
):
    fake_distribution(
        "lerax-broken", "broken", "lerax_broken_plugin", "import no_such_module_xyz\n"
    )
    registry = get_registry()
    info = registry.plugins["broken"]
    assert info.status == "broken"
    assert isinstance(info.error, ModuleNotFoundError)
    assert "no_such_module_xyz" in info.reason
    assert registry.plugins["alpha"].status == "ok", "other plugins must keep working"


def test_using_a_broken_plugin_raises_its_original_error(fake_distribution):
    fake_distribution(
        "lerax-broken", "broken", "lerax_broken_plugin", "import no_such_module_xyz\n"
    )
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz") as raised:
        make("broken")
    assert raised.value is get_registry().plugins["broken"].error


def test_entry_point_to_a_missing_module_is_broken(fake_distribution):
    fake_distribution("lerax-ghost", "ghost", "lerax_ghost_module_absent")
    assert get_registry().plugins["ghost"].status == "broken"


def test_wrong_hook_signature_is_reported_not_crashed_on(fake_distribution):
    fake_distribution(
        "lerax-badsig",
        "badsig",
        "lerax_badsig",
        """
        from lerax import hookimpl

        @hookimpl
        def lerax_register_backends(register, surprise):
            register("never", object, "")
        """,
    )
    info = get_registry().plugins["badsig"]
    assert info.status == "broken"
    assert "surprise" in info.reason and "lerax_register_backends" in info.reason
    assert "never" not in get_registry().names


def test_unknown_hook_name_is_reported(fake_distribution):
    fake_distribution(
        "lerax-typo",
        "typo",
        "lerax_typo",
        """
        def lerax_register_backend(register):  # missing the final s
            pass
        """,
    )
    info = get_registry().plugins["typo"]
    assert info.status == "broken"
    assert "lerax_register_backend" in info.reason


def test_plugin_raising_while_registering_keeps_nothing(fake_distribution):
    fake_distribution(
        "lerax-halfway",
        "halfway",
        "lerax_halfway",
        """
        from lerax import hookimpl

        @hookimpl
        def lerax_register_backends(register):
            register("halfway_first", lambda: None, "")
            raise RuntimeError("registration exploded")
        """,
    )
    registry = get_registry()
    assert registry.plugins["halfway"].status == "broken"
    assert "registration exploded" in registry.plugins["halfway"].reason
    assert "halfway_first" not in registry.names


def test_factory_of_the_wrong_kind_is_rejected_on_use(fake_distribution):
    fake_distribution(
        "lerax-wrongkind",
        "wrongkind",
        "lerax_wrongkind",
        """
        from lerax import hookimpl

        @hookimpl
        def lerax_register_backends(register):
            register("notabackend", dict, "returns a dict")
        """,
    )
    with pytest.raises(TypeError, match="not an AbstractLoggingBackend"):
        make("notabackend")


def test_a_good_temporary_plugin_works_beside_broken_ones(fake_distribution, tmp_path):
    fake_distribution(
        "lerax-broken", "broken", "lerax_broken_plugin", "raise SystemError('x')\n"
    )
    fake_distribution("lerax-fine", "fine", "lerax_fine", GOOD_BACKEND)
    assert type(make("fine")).__name__ == "FineBackend"


def test_logging_hooks_written_as_module_functions_are_rejected(fake_distribution):
    fake_distribution(
        "lerax-misplaced",
        "misplaced",
        "lerax_misplaced",
        """
        def lerax_on_iteration(step, metrics):
            pass
        """,
    )
    info = get_registry().plugins["misplaced"]
    assert info.status == "broken"
    assert (
        "AbstractLoggingBackend" in info.reason and "lerax_on_iteration" in info.reason
    )


@pytest.mark.parametrize(
    "statement", ["raise SystemExit(3)", "import sys; sys.exit('bye')"]
)
def test_sys_exit_at_import_breaks_only_that_plugin(
    fake_environment, fake_distribution, statement
):
    fake_distribution("lerax-quitter", "quitter", "lerax_quitter", statement + "\n")
    registry = get_registry()
    assert registry.plugins["quitter"].status == "broken"
    assert "SystemExit" in registry.plugins["quitter"].reason
    assert registry.plugins["alpha"].status == "ok"
    assert sorted(registry.names) == ["alpha", "beta"]


def test_keyboard_interrupt_raised_by_a_register_hook_is_isolated(
    only_fake_plugins, backend_plugin, fake_distribution
):
    backend_plugin("lerax-multi", "multi", "extra")
    fake_distribution(
        "lerax-interrupter",
        "interrupter",
        "lerax_interrupter",
        """
        from lerax import hookimpl

        @hookimpl
        def lerax_register_callbacks(register):
            raise KeyboardInterrupt
        """,
    )
    # "extra" is no entry point's name, so every plugin is loaded to find it
    with pytest.warns(PluginWarning, match="'interrupter'.*KeyboardInterrupt"):
        assert type(make("extra")).__name__.endswith("Backend")
    assert get_registry().plugins["interrupter"].status == "broken"


def test_a_real_ctrl_c_during_discovery_still_stops_the_program(
    only_fake_plugins, fake_distribution
):
    fake_distribution(
        "lerax-sleepy",
        "sleepy",
        "lerax_sleepy",
        """
        import os, signal, time
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C
        time.sleep(5)
        """,
    )
    with pytest.raises(KeyboardInterrupt):
        get_registry().load_all()


def test_slow_plugin_is_reported_by_name(
    fake_environment, fake_distribution, monkeypatch
):
    monkeypatch.setattr(registry_module, "SLOW_LOAD_SECONDS", 0.05)
    fake_distribution(
        "lerax-slow", "slow", "lerax_slow", "import time; time.sleep(0.2)\n"
    )
    plugins = get_registry().plugins
    assert plugins["slow"].slow and plugins["slow"].load_seconds >= 0.2
    assert not plugins["alpha"].slow


def test_looking_up_a_name_imports_only_the_plugin_named_after_it(
    fake_environment, fake_distribution
):
    fake_distribution(
        "lerax-heavy",
        "heavy",
        "lerax_heavy_unneeded",
        "import sys; sys.modules['heavy_was_imported'] = sys\n",
    )
    registry = get_registry()
    assert lookup("alpha").plugin == "alpha"
    loaded = sorted(name for name, info in registry.discovered.items() if info.loaded)
    assert loaded == ["alpha"]
    assert "lerax_heavy_unneeded" not in sys.modules
    assert "heavy_was_imported" not in sys.modules


def test_a_name_no_entry_point_tells_loads_every_plugin(
    only_fake_plugins, backend_plugin
):
    backend_plugin("lerax-multi", "multi", "multi", "extra")
    backend_plugin("lerax-other", "other")
    assert lookup("extra").plugin == "multi"
    assert all(info.loaded for info in get_registry().plugins.values())


def test_register_protocol_matches_the_register_plugins_receive(
    only_fake_plugins, fake_distribution
):
    import inspect

    from lerax.plugin.hookspecs import Register

    fake_distribution(
        "lerax-sig",
        "sig",
        "lerax_sig_plugin",
        """
        import inspect
        from lerax import hookimpl

        SIGNATURES = []

        @hookimpl
        def lerax_register_callbacks(register):
            SIGNATURES.append(inspect.signature(register))
        """,
    )
    get_registry().load_all()
    import lerax_sig_plugin

    (given,) = lerax_sig_plugin.SIGNATURES
    protocol = inspect.signature(Register.__call__)
    assert list(given.parameters) == list(protocol.parameters)[1:]  # minus self
    assert protocol.parameters["description"].default == ""
    assert given.parameters["description"].default == ""
