"""Check that an installed plugin behaves as Lerax expects of every plugin."""

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lerax.plugin.hookspecs import AbstractLoggingBackend
from lerax.plugin.registry import LeraxPluginManager, PluginInfo, reload_registry
from lerax.testing.recording import RecordingBackend


class _Failing(AbstractLoggingBackend):
    """A sibling backend that raises everywhere, to prove errors stay isolated."""

    def lerax_on_training_start(self, run_name, hyperparameters):
        raise RuntimeError("deliberate failure of a sibling backend")

    def lerax_on_iteration(self, step, metrics):
        raise RuntimeError("deliberate failure of a sibling backend")

    def lerax_close(self):
        raise RuntimeError("deliberate failure of a sibling backend")


@dataclass
class ConformanceReport:
    """What `check_plugin` verified, for display in a plugin's own test output."""

    plugin: PluginInfo
    checked: list[str] = field(default_factory=list)


MEMBERS = 3
"""Members of the many-runs training `check_plugin` runs."""


def _short_training(callback: Any, *, members: int | None = None) -> None:
    import jax

    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    env = CartPole()
    policy_key, learn_key = jax.random.split(jax.random.key(0))
    policy = MLPActorCriticPolicy(env=env, key=policy_key)
    algorithm = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    key = learn_key if members is None else jax.random.split(learn_key, members)
    algorithm.learn(
        env, policy, 3 * algorithm.steps_per_iteration, key=key, callback=callback
    )


def _check_members(name: str, backend: AbstractLoggingBackend, report) -> None:
    """The same backend in a training of `MEMBERS` members: it must take their
    calls (every member's run if it takes `member`, else the aggregate) without
    raising."""
    from lerax.callback import LoggingCallback
    from lerax.logging.dispatch import takes_members
    from lerax.testing.recording import MemberRecordingBackend

    recorder = MemberRecordingBackend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = LoggingCallback([backend, recorder])
        _short_training(logger, members=MEMBERS)
        logger.close()
    own = [str(w.message) for w in caught if type(backend).__name__ in str(w.message)]
    assert not own, f"{name}: the backend raised with {MEMBERS} members: {own}"
    assert sorted(recorder.runs, key=str) == [*range(MEMBERS), None], (
        f"{name}: a {MEMBERS}-member training did not run as expected"
    )
    takes = takes_members(backend)
    report.checked.append(
        f"{name}: {MEMBERS} members, "
        + ("every member's run and the aggregate" if takes else "the aggregate run")
    )


def _check_backend(name: str, backend: AbstractLoggingBackend, report) -> None:
    from lerax.callback import LoggingCallback

    recorder = RecordingBackend()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = LoggingCallback([_Failing(), backend, recorder])
        _short_training(logger)
        logger.close()
        logger.close()
        backend.lerax_close()  # a second, direct close must be harmless too
    kinds = recorder.events
    expected = ["start", "iteration", "iteration", "iteration", "end", "close"]
    assert kinds == expected, f"{name}: lifecycle events were {kinds}, not {expected}"
    own = [str(w.message) for w in caught if type(backend).__name__ in str(w.message)]
    assert not own, f"{name}: the backend raised during training: {own}"
    failing = [str(w.message) for w in caught if "_Failing" in str(w.message)]
    assert len(failing) == 1, (
        f"{name}: a failing sibling backend should be reported exactly once, "
        f"got {failing}"
    )
    report.checked.append(f"{name}: lifecycle under jit, close idempotent, isolated")
    _check_members(name, backend, report)


def check_plugin(
    plugin: str, *, options: Mapping[str, Mapping[str, Any]] | None = None
) -> ConformanceReport:
    """Assert that the installed plugin `plugin` (its entry-point name) conforms.

    Checks that it is discovered through the `lerax` entry-point group and loads
    cleanly; that its hook implementations match the specs; that each name it
    registers builds the declared kind of object from `options[name]`; that each
    callback survives a short real training under `jax.jit` and each backend
    receives start, iterations, end and close in order beside a failing sibling
    (whose errors must not reach it), and tolerates being closed twice; and
    that each backend takes a training of several members (`learn` with a
    batch of keys) without raising.
    Raises `AssertionError` with what went wrong; returns a report otherwise.
    """
    from lerax.callback import AbstractCallback, make

    options = options or {}
    registry = reload_registry()
    info = registry.plugins.get(plugin)
    assert info is not None, (
        f"plugin {plugin!r} is not installed: no entry point named {plugin!r} in "
        f"group 'lerax' (found: {sorted(registry.plugins)})"
    )
    assert info.status == "ok", f"plugin {plugin!r} is {info.status}: {info.reason}"
    assert info.registrations, f"plugin {plugin!r} registers no callback or backend"
    report = ConformanceReport(info, [f"{plugin}: discovered, hooks match the specs"])

    # pluggy's checks once more on a fresh manager, so the verdict is explicit.
    LeraxPluginManager().register_checked(
        registry.manager.get_plugin(plugin), f"{plugin}-check"
    )
    for registration in info.registrations:
        built = make(registration.name, **options.get(registration.name, {}))
        if registration.kind == "backend":
            assert isinstance(built, AbstractLoggingBackend)
            _check_backend(registration.name, built, report)
        else:
            assert isinstance(built, AbstractCallback)
            _short_training(built)
            report.checked.append(f"{registration.name}: survives a jitted training")
    return report
