"""A plugin that fails to import or registers badly breaks nothing but itself."""

import pytest

from lerax.callback import make
from lerax.plugin import get_registry

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


def test_plugin_that_fails_to_import_is_listed_as_broken(fake_distribution):
    fake_distribution(
        "lerax-broken", "broken", "lerax_broken_plugin", "import no_such_module_xyz\n"
    )
    registry = get_registry()
    info = registry.plugins["broken"]
    assert info.status == "broken"
    assert isinstance(info.error, ModuleNotFoundError)
    assert "no_such_module_xyz" in info.reason
    assert registry.plugins["jsonl"].status == "ok", "other plugins must keep working"


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


def test_name_clash_breaks_the_later_plugin_only(fake_distribution):
    fake_distribution(
        "lerax-clash",
        "zclash",
        "lerax_clash",
        GOOD_BACKEND.replace('"fine"', '"jsonl"'),
    )
    registry = get_registry()
    assert registry.names["jsonl"].plugin == "jsonl"
    assert "already registered" in registry.plugins["zclash"].reason


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
