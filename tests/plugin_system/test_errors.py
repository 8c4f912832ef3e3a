"""Name lookups fail with messages a user can act on."""

import pytest

from lerax.callback import make
from lerax.plugin import PluginRegistry, UnknownNameError, lookup, registry


def test_unknown_name_lists_installed_and_suggests_closest(fake_environment):
    with pytest.raises(UnknownNameError) as raised:
        lookup("alpah")
    message = str(raised.value)
    assert "'alpah'" in message
    assert "Did you mean 'alpha'?" in message
    assert "Installed: alpha, beta." in message


def test_missing_first_party_name_gives_the_pip_install():
    empty = PluginRegistry(entry_points=[])  # an environment with no plugin installed
    with pytest.raises(UnknownNameError) as raised:
        lookup("wandb", empty)
    assert "pip install lerax-wandb" in str(raised.value)
    assert "Installed: none" in str(raised.value)


@pytest.mark.parametrize(
    ("typo", "name"),
    [("tensorbord", "tensorboard"), ("consle", "console"), ("wnadb", "wandb")],
)
def test_typo_of_a_first_party_name_not_installed_suggests_its_install(
    fake_environment, typo, name
):
    with pytest.raises(UnknownNameError) as raised:
        lookup(typo)
    message = str(raised.value)
    assert f"Did you mean {name!r}?" in message
    assert f"pip install lerax-{name}" in message
    assert "Installed: alpha, beta." in message


def test_missing_first_party_class_import_names_the_distribution(monkeypatch):
    import lerax.callback

    monkeypatch.setattr(registry, "_registry", PluginRegistry(entry_points=[]))
    with pytest.raises(ImportError, match="pip install lerax-tensorboard"):
        lerax.callback.TensorBoardBackend  # noqa: B018


def test_unknown_attribute_is_an_attribute_error():
    import lerax.callback

    with pytest.raises(AttributeError, match="NoSuchThing"):
        lerax.callback.NoSuchThing  # noqa: B018


@pytest.mark.parametrize("name", [5, None, b"jsonl", ["jsonl"]])
def test_a_name_that_is_not_a_string_says_so(fake_environment, name):
    with pytest.raises(TypeError, match="plugin name must be a string such as"):
        make(name)


def test_learn_with_an_unknown_name_fails_before_compiling(fake_environment):
    import jax

    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    with pytest.raises(UnknownNameError, match="Did you mean 'console'"):
        PPO().learn(env, policy, 2**12, key=jax.random.key(1), callback=["consle"])
