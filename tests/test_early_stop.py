"""Stopping training early through `continue_training`.

A run of exactly k iterations' worth of timesteps is *not* a valid reference for
"the policy at iteration k": the annealed learning rate is scheduled over
`total_timesteps`, so it differs between the two runs. Instead the callback
copies the policy's parameters into its state at iteration k and reports them
when training ends, in both the stopped and the full run.
"""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lerax.algorithm import PPO
from lerax.callback import AbstractCallback
from lerax.policy import MLPActorCriticPolicy

STOP_AT = 3
FULL_ITERATIONS = 600

#: (event, payload) reported by StopAfter.
REPORTS: list[tuple[str, dict]] = []


def flat_parameters(policy) -> jax.Array:
    return ravel_pytree(eqx.filter(policy, eqx.is_inexact_array))[0]


class StopAfter(AbstractCallback):
    """Stops after iteration `stop_after`; snapshots the policy at `record_at`.

    Both are arrays, so one compiled loop serves every value.
    """

    stop_after: jax.Array
    record_at: jax.Array

    def reset(self, ctx, *, key):
        params = flat_parameters(ctx.policy)
        return {
            "iterations": jnp.asarray(0, jnp.int32),
            "snapshot": jnp.full_like(params, jnp.nan),
        }

    def step_reset(self, ctx, *, key):
        return None

    def on_iteration(self, ctx, *, key):
        jax.debug.callback(
            lambda i: REPORTS.append(("iteration", {"iteration": int(i)})),
            ctx.iteration,
            ordered=True,
        )
        return {
            "iterations": ctx.state["iterations"] + 1,
            "snapshot": jnp.where(
                ctx.iteration == self.record_at,
                flat_parameters(ctx.policy),
                ctx.state["snapshot"],
            ),
        }

    def continue_training(self, ctx, *, key):
        return ctx.iteration < self.stop_after

    def on_training_end(self, ctx, *, key):
        jax.debug.callback(
            lambda state, iteration, policy: REPORTS.append(
                (
                    "end",
                    {
                        "iterations": int(state["iterations"]),
                        "snapshot": np.asarray(state["snapshot"]),
                        "iteration": int(iteration),
                        "policy": np.asarray(policy),
                    },
                )
            ),
            ctx.state,
            ctx.iteration,
            flat_parameters(ctx.policy),
            ordered=True,
        )
        return ctx.state


@pytest.fixture
def ppo() -> PPO:
    # Annealing explicitly on: that is what makes a shorter run a bad reference.
    return PPO(
        num_envs=4,
        num_steps=32,
        num_epochs=2,
        num_minibatches=2,
        anneal_learning_rate=True,
    )


def run(ppo, env, policy, stop_after, *, record_at=STOP_AT):
    REPORTS.clear()
    callback = StopAfter(
        stop_after=jnp.asarray(stop_after, jnp.int32),
        record_at=jnp.asarray(record_at, jnp.int32),
    )
    start = time.perf_counter()
    trained = ppo.learn(
        env,
        policy,
        FULL_ITERATIONS * ppo.steps_per_iteration,
        key=jax.random.key(1),
        callback=callback,
    )
    jax.block_until_ready(trained)
    jax.effects_barrier()
    elapsed = time.perf_counter() - start
    host_iterations = [p["iteration"] for e, p in REPORTS if e == "iteration"]
    (end,) = [p for e, p in REPORTS if e == "end"]
    return trained, elapsed, host_iterations, end


def test_early_stop_runs_fewer_iterations_faster_and_returns_the_stopped_policy(
    ppo, env
):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    never = FULL_ITERATIONS + 1
    run(ppo, env, policy, 1)  # compile once: every stop_after shares the program

    full, full_time, full_iterations, full_end = run(ppo, env, policy, never)
    stopped, stop_time, stop_iterations, stop_end = run(ppo, env, policy, STOP_AT)

    # Fewer iterations: counted on the host, in the callback state and by the loop.
    assert full_iterations == list(range(1, FULL_ITERATIONS + 1))
    assert stop_iterations == list(range(1, STOP_AT + 1))
    assert full_end["iterations"] == full_end["iteration"] == FULL_ITERATIONS
    assert stop_end["iterations"] == stop_end["iteration"] == STOP_AT

    # Less wall time (both compiled already); the full run does 200x the work.
    print(f"full run {full_time:.3f}s, stopped run {stop_time:.3f}s")
    assert stop_time < 0.25 * full_time, (stop_time, full_time)

    # The returned policy is the one at the stopping iteration...
    stopped_params = np.asarray(flat_parameters(stopped))
    np.testing.assert_array_equal(stopped_params, stop_end["snapshot"])
    np.testing.assert_array_equal(stopped_params, stop_end["policy"])
    # ...which is exactly where the uninterrupted run was at that iteration
    # (same key, same schedule: stopping does not change the first k updates)...
    np.testing.assert_array_equal(stopped_params, full_end["snapshot"])
    # ...and not where the full run ended, nor where training began.
    np.testing.assert_array_equal(np.asarray(flat_parameters(full)), full_end["policy"])
    assert not np.array_equal(stopped_params, full_end["policy"])
    assert not np.array_equal(stopped_params, np.asarray(flat_parameters(policy)))


def test_stop_after_first_iteration(ppo, env):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    stopped, _, iterations, end = run(ppo, env, policy, 1, record_at=1)
    assert iterations == [1]
    assert end["iterations"] == 1
    np.testing.assert_array_equal(np.asarray(flat_parameters(stopped)), end["snapshot"])
