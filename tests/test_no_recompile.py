"""Calling `learn` again with the same shapes reuses the compiled loop."""

from __future__ import annotations

import jax
import numpy as np

from lerax.algorithm import PPO
from lerax.policy import MLPActorCriticPolicy

# Hyper-parameters set explicitly so that a fresh, equal PPO can be built.
SETTINGS = dict(num_envs=2, num_steps=8, num_epochs=1, num_minibatches=1)


def test_second_learn_reuses_the_compiled_loop(
    env, trace_counter, trace_counting_callback, compile_counter, trees_equal
):
    ppo = PPO(**SETTINGS)
    spi = ppo.steps_per_iteration
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    callback = trace_counting_callback(trace_counter)

    with compile_counter() as first:
        trained = ppo.learn(
            env, policy, 3 * spi, key=jax.random.key(1), callback=callback
        )
        jax.block_until_ready(trained)
    # The counters work: the first call traced and compiled the loop.
    assert trace_counter.count == 1
    assert first.compiles_of("run_loop") == 1, first.compiled

    # Same arguments again.
    with compile_counter() as second:
        again = ppo.learn(
            env, policy, 3 * spi, key=jax.random.key(1), callback=callback
        )
        jax.block_until_ready(again)
    assert trace_counter.count == 1
    assert second.compiles_of("run_loop") == 0, second.compiled
    trees_equal(trained, again)  # and it is deterministic

    # Other values of the same shapes: total_timesteps (a traced array, also
    # not a multiple of one iteration), key, a legacy key, trained parameters,
    # and equal-but-new PPO and callback instances.
    with compile_counter() as third:
        longer = ppo.learn(
            env, policy, 7 * spi + 5, key=jax.random.key(1), callback=callback
        )
        other_key = ppo.learn(
            env, policy, 3 * spi, key=jax.random.key(2), callback=callback
        )
        legacy_key = ppo.learn(
            env, policy, 3 * spi, key=jax.random.PRNGKey(2), callback=callback
        )
        continued = PPO(**SETTINGS).learn(
            env,
            trained,
            10 * spi,
            key=jax.random.key(3),
            callback=trace_counting_callback(trace_counter),
        )
        jax.block_until_ready((longer, other_key, legacy_key, continued))
    assert trace_counter.count == 1
    assert third.compiles_of("run_loop") == 0, third.compiled

    # The runs really differ (the new values were used, not a cached result).
    for result in (longer, other_key, continued):
        assert not np.array_equal(
            np.asarray(result.actor.layers[0].weight),
            np.asarray(trained.actor.layers[0].weight),
        )
