"""`lerax.save` and `lerax.load`: a policy to one file and back, with clear refusals."""

import equinox as eqx
import jax
import numpy as np
import pytest

import lerax
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy, MLPQPolicy
from lerax.serialisation import PolicyFileError


@pytest.fixture
def policy():
    return MLPActorCriticPolicy(env=CartPole(), key=jax.random.key(0))


def like(width=64):
    return MLPActorCriticPolicy(env=CartPole(), width=width, key=jax.random.key(9))


def test_round_trip_gives_the_same_parameters(policy, tmp_path, trees_equal):
    path = lerax.save(policy, tmp_path / "policy.lerax")
    loaded = lerax.load(path, like=like())
    trees_equal(loaded, policy)
    observation = np.ones(4, np.float32)
    assert loaded.predict(observation) == policy.predict(observation)


def test_saving_again_replaces_the_file(policy, tmp_path, trees_equal):
    path = tmp_path / "policy.lerax"
    lerax.save(like(), path)
    lerax.save(policy, path)
    trees_equal(lerax.load(path, like=like()), policy)
    assert [p.name for p in tmp_path.iterdir()] == ["policy.lerax"]  # no temporaries


def test_another_shape_is_refused_naming_the_file(policy, tmp_path):
    path = lerax.save(policy, tmp_path / "policy.lerax")
    with pytest.raises(PolicyFileError, match=r"policy\.lerax.*another shape"):
        lerax.load(path, like=like(width=32))


def test_another_class_is_refused(policy, tmp_path):
    path = lerax.save(policy, tmp_path / "policy.lerax")
    q_policy = MLPQPolicy(env=CartPole(), key=jax.random.key(0))
    with pytest.raises(PolicyFileError, match=r"MLPActorCriticPolicy.*MLPQPolicy"):
        lerax.load(path, like=q_policy)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_file_is_refused(policy, tmp_path, damage):
    path = lerax.save(policy, tmp_path / "policy.lerax")
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-10] ^= 0xFF  # one parameter's bytes: still parses as numbers
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(PolicyFileError, match=r"policy\.lerax.*damaged"):
        lerax.load(path, like=like())


def test_other_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.lerax"):
        lerax.load(tmp_path / "missing.lerax", like=like())
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(PolicyFileError, match=r"notes\.txt.*not a policy"):
        lerax.load(other, like=like())


def test_only_policies_are_saved(tmp_path):
    with pytest.raises(TypeError, match="AbstractPolicy"):
        lerax.save(eqx.nn.Linear(2, 2, key=jax.random.key(0)), tmp_path / "x")


def test_an_unwritable_directory_is_named(policy, tmp_path):
    with pytest.raises(OSError, match="cannot save the policy to"):
        lerax.save(policy, tmp_path / "no" / "such" / "dir" / "policy.lerax")
