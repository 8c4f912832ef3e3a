"""Plugins are found through the `lerax` entry-point group of installed distributions."""

import importlib
import importlib.metadata

import pytest

from lerax.callback import AbstractCallback, LoggingCallback, make, resolve_callback
from lerax.callback.callback_list import CallbackList
from lerax.plugin import AbstractLoggingBackend, get_registry, reload_registry

FIRST_PARTY = {
    "console": ("lerax-console", "backend"),
    "tensorboard": ("lerax-tensorboard", "backend"),
    "wandb": ("lerax-wandb", "backend"),
    "progress": ("lerax-progress", "callback"),
}

RECORDER = """
from lerax import hookimpl
from lerax.plugin import AbstractLoggingBackend

EVENTS = []

class Recorder(AbstractLoggingBackend):
    def __init__(self, label="recorder"):
        self.label = label
    def lerax_on_training_start(self, run_name, hyperparameters):
        EVENTS.append(("start", run_name))
    def lerax_on_iteration(self, step, metrics):
        EVENTS.append(("iteration", step))
    def lerax_on_training_end(self, step, reason):
        EVENTS.append(("end", reason))
    def lerax_close(self): ...

@hookimpl
def lerax_register_backends(register):
    register("recorder", Recorder, "records events in EVENTS")
"""


@pytest.fixture
def recorder(only_fake_plugins, fake_distribution):
    """Only the plugin `recorder` installed; returns the list its backends append to."""
    fake_distribution("lerax-recorder", "recorder", "fake_recorder_plugin", RECORDER)
    return importlib.import_module("fake_recorder_plugin").EVENTS


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(FIRST_PARTY))
def test_first_party_plugins_are_discovered_from_their_distributions(name):
    dist, kind = FIRST_PARTY[name]
    if not installed(dist):
        pytest.skip(f"{dist} is not installed in this environment")
    info = get_registry().plugins[name]
    assert (info.distribution, info.status) == (dist, "ok")
    assert info.version
    assert [(r.name, r.kind) for r in info.registrations] == [(name, kind)]


def test_third_party_example_is_discovered_like_any_plugin():
    if not installed("lerax-jsonl"):
        pytest.skip("lerax-jsonl (examples/lerax-jsonl) is not installed")
    info = get_registry().plugins["jsonl"]
    assert (info.distribution, info.status) == ("lerax-jsonl", "ok")
    assert info.hooks == ["lerax_register_backends"]


def test_discovery_is_lazy_and_cached(monkeypatch):
    from lerax.plugin import registry

    assert registry._registry is None  # nothing discovered until asked
    first = get_registry()
    assert get_registry() is first
    assert reload_registry() is not first


def test_make_builds_a_named_backend_with_options(recorder):
    backend = make("recorder", label="mine")
    assert isinstance(backend, AbstractLoggingBackend)
    assert backend.label == "mine"


def test_names_and_instances_mix_and_backends_share_one_logger(recorder):
    class Recorder(AbstractLoggingBackend):
        def lerax_on_training_start(self, run_name, hyperparameters): ...
        def lerax_on_iteration(self, step, metrics): ...
        def lerax_close(self): ...

    class Nothing(AbstractCallback):
        def reset(self, ctx, *, key):
            return None

        def step_reset(self, ctx, *, key):
            return None

    instance, nothing = Recorder(), Nothing()
    callback = resolve_callback(["recorder", instance, nothing])
    assert isinstance(callback, CallbackList)
    loggers = [c for c in callback.callbacks if isinstance(c, LoggingCallback)]
    assert len(loggers) == 1, "all backends must share one LoggingCallback"
    assert [type(b).__name__ for b in loggers[0].backends] == [
        "Recorder",
        "Recorder",
    ]
    assert nothing in callback.callbacks


def test_plugin_classes_import_from_lerax_callback():
    for dist in ("lerax-console", "lerax-tensorboard", "lerax-progress"):
        if not installed(dist):
            pytest.skip(f"{dist} is not installed in this environment")
    from lerax.callback import ConsoleBackend, ProgressBarCallback, TensorBoardBackend

    assert ConsoleBackend.__module__ == "lerax_console"
    assert TensorBoardBackend.__module__ == "lerax_tensorboard"
    assert issubclass(ProgressBarCallback, AbstractCallback)


@pytest.mark.slow
def test_a_discovered_name_trains(recorder):
    import jax

    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    env = CartPole()
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo.learn(
        env,
        policy,
        2 * algo.steps_per_iteration,
        key=jax.random.key(1),
        callback="recorder",
    )
    assert [event for event, _ in recorder] == [
        "start",
        "iteration",
        "iteration",
        "end",
    ]
    assert recorder[0][1].startswith("PPO-CartPole-")
    assert recorder[-1] == ("end", "completed")


@pytest.mark.slow
def test_named_backends_do_not_recompile_on_a_second_learn(recorder):
    import jax

    from lerax.algorithm import PPO
    from lerax.callback import AbstractStatelessCallback
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    traces = []

    class CountTraces(AbstractStatelessCallback):
        def reset(self, ctx, *, key):
            traces.append(1)  # Python code in a hook runs only while tracing
            return None

    env = CartPole()
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    counter = CountTraces()
    for seed in range(2):
        algo.learn(
            env,
            policy,
            algo.steps_per_iteration,
            key=jax.random.key(seed),
            callback=[counter, "recorder"],
        )
    assert len(traces) == 1, (
        "a new logger with the same settings must reuse the compilation"
    )
    starts = [run for event, run in recorder if event == "start"]
    assert len(set(starts)) == 2, "each run logs on its own"
