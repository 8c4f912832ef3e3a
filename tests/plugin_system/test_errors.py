"""Name lookups fail with messages a user can act on."""

import pytest

from lerax.plugin import PluginRegistry, UnknownNameError, lookup, registry


def test_unknown_name_lists_installed_and_suggests_closest():
    with pytest.raises(UnknownNameError) as raised:
        lookup("jsonll")
    message = str(raised.value)
    assert "'jsonll'" in message
    assert "Did you mean 'jsonl'?" in message
    for name in ("console", "jsonl", "progress", "tensorboard", "wandb"):
        assert name in message


def test_missing_first_party_name_gives_the_pip_install():
    empty = PluginRegistry(entry_points=[])  # an environment with no plugin installed
    with pytest.raises(UnknownNameError) as raised:
        lookup("wandb", empty)
    assert "pip install lerax-wandb" in str(raised.value)
    assert "Installed: none" in str(raised.value)


def test_missing_first_party_class_import_names_the_distribution(monkeypatch):
    import lerax.callback

    monkeypatch.setattr(registry, "_registry", PluginRegistry(entry_points=[]))
    with pytest.raises(ImportError, match="pip install lerax-tensorboard"):
        lerax.callback.TensorBoardBackend  # noqa: B018


def test_unknown_attribute_is_an_attribute_error():
    import lerax.callback

    with pytest.raises(AttributeError, match="NoSuchThing"):
        lerax.callback.NoSuchThing  # noqa: B018


def test_learn_with_an_unknown_name_fails_before_compiling():
    import jax

    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    with pytest.raises(UnknownNameError, match="Did you mean 'console'"):
        PPO().learn(env, policy, 2**12, key=jax.random.key(1), callback=["consle"])
