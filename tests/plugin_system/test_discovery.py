"""Plugins are found through the `lerax` entry-point group of installed distributions."""

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


@pytest.mark.parametrize("name", sorted(FIRST_PARTY))
def test_first_party_plugins_are_discovered_from_their_distributions(name):
    dist, kind = FIRST_PARTY[name]
    info = get_registry().plugins[name]
    assert (info.distribution, info.status) == (dist, "ok")
    assert info.version
    assert [(r.name, r.kind) for r in info.registrations] == [(name, kind)]


def test_third_party_example_is_discovered_like_any_plugin():
    info = get_registry().plugins["jsonl"]
    assert (info.distribution, info.status) == ("lerax-jsonl", "ok")
    assert info.hooks == ["lerax_register_backends"]


def test_discovery_is_lazy_and_cached(monkeypatch):
    from lerax.plugin import registry

    assert registry._registry is None  # nothing discovered until asked
    first = get_registry()
    assert get_registry() is first
    assert reload_registry() is not first


def test_make_builds_a_named_backend_with_options(tmp_path):
    backend = make("jsonl", path=tmp_path / "m.jsonl")
    assert isinstance(backend, AbstractLoggingBackend)
    assert backend.path == tmp_path / "m.jsonl"


def test_names_and_instances_mix_and_backends_share_one_logger(tmp_path):
    class Recorder(AbstractLoggingBackend):
        def lerax_on_training_start(self, run_name, hyperparameters): ...
        def lerax_on_iteration(self, step, metrics): ...
        def lerax_close(self): ...

    class Nothing(AbstractCallback):
        def reset(self, ctx, *, key):
            return None

        def step_reset(self, ctx, *, key):
            return None

    recorder, nothing = Recorder(), Nothing()
    callback = resolve_callback(["jsonl", recorder, nothing])
    assert isinstance(callback, CallbackList)
    loggers = [c for c in callback.callbacks if isinstance(c, LoggingCallback)]
    assert len(loggers) == 1, "all backends must share one LoggingCallback"
    assert [type(b).__name__ for b in loggers[0].backends] == [
        "JsonlBackend",
        "Recorder",
    ]
    assert nothing in callback.callbacks


def test_plugin_classes_import_from_lerax_callback():
    from lerax.callback import ConsoleBackend, ProgressBarCallback, TensorBoardBackend

    assert ConsoleBackend.__module__ == "lerax_console"
    assert TensorBoardBackend.__module__ == "lerax_tensorboard"
    assert issubclass(ProgressBarCallback, AbstractCallback)


def test_a_discovered_name_trains(tmp_path, monkeypatch):
    import json

    import jax

    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    monkeypatch.chdir(tmp_path)  # jsonl writes runs/<run name>.jsonl by default
    env = CartPole()
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo.learn(
        env,
        policy,
        2 * algo.steps_per_iteration,
        key=jax.random.key(1),
        callback="jsonl",
    )
    (path,) = (tmp_path / "runs").glob("PPO-CartPole-*.jsonl")
    events = [json.loads(line)["event"] for line in path.read_text().splitlines()]
    assert events == ["start", "iteration", "iteration", "end"]


def test_named_backends_do_not_recompile_on_a_second_learn(tmp_path, monkeypatch):
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

    monkeypatch.chdir(tmp_path)
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
            callback=[counter, "jsonl"],
        )
    assert len(traces) == 1, (
        "a new logger with the same settings must reuse the compilation"
    )
    assert len(list((tmp_path / "runs").glob("*.jsonl"))) == 2, (
        "each run logs on its own"
    )
