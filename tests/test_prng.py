"""The training loop's random stream: Philox, derived purely from the user's key."""

import jax
import jax.numpy as jnp
import jax.random as jr

from lerax.algorithm._prng import loop_key


def test_loop_key_is_philox_and_a_pure_function_of_the_key():
    key = loop_key(jr.key(0))
    assert str(jax.random.key_impl(key)) == "philox4x32"
    same = jax.random.key_data(loop_key(jr.key(0)))
    other = jax.random.key_data(loop_key(jr.key(1)))
    assert jnp.array_equal(jax.random.key_data(key), same)
    assert not jnp.array_equal(jax.random.key_data(key), other)


def test_loop_key_works_under_jit_and_vmap():
    keys = jr.split(jr.key(0), 4)
    draws = jax.jit(jax.vmap(lambda k: jr.uniform(loop_key(k))))(keys)
    assert draws.shape == (4,)
    assert len(set(draws.tolist())) == 4


def test_without_philox_the_users_key_is_used(monkeypatch):
    from lerax.algorithm import _prng

    monkeypatch.setattr(_prng, "_has_philox", lambda: False)
    key = jr.key(3)
    assert loop_key(key) is key
