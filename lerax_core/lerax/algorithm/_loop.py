"""The one training loop every algorithm runs, inside a single `jax.jit`.

It owns everything that is not an algorithm's own: keys, the parallel
environments, the four contexts, every callback hook in the documented order,
`continue_training`, the Ctrl-C poll, the divergence check, the stop reason,
and the safety of host calls when the loop is `vmap`ped over seeds. An
algorithm supplies `init`, `act` and `update` (see
[`AbstractAlgorithm`][lerax.algorithm.AbstractAlgorithm]).

Per iteration: `step_reset` (per environment), then `num_steps` steps of
every environment with `on_step` after each, then the algorithm's `update`,
then `on_iteration`, `continue_training` and the callbacks' `metrics`, which
the loop carries into the next iteration's context (`reported`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Key, PyTree

from lerax import host, members
from lerax.algorithm._prng import loop_key
from lerax.algorithm.interrupt import poll_interrupt
from lerax.algorithm.rollout import EnvCarry, collect_rollout
from lerax.callback._callback import AbstractCallback
from lerax.callback.context import (
    IterationContext,
    ResetContext,
    StopReason,
    TrainingContext,
)
from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractPolicy

if TYPE_CHECKING:
    from lerax.algorithm._algorithm import AbstractAlgorithm


class LoopCarry(eqx.Module):
    """What the loop threads from one iteration to the next."""

    policy: AbstractPolicy
    algorithm_state: PyTree
    env: EnvCarry
    callback_state: PyTree
    training_log: dict[str, Float[Array, ""]]
    reported: dict[str, Float[Array, ""]]
    iteration: Int[Array, ""]
    stop_reason: Int[Array, ""]
    diverged_at: Int[Array, ""]
    key: Key[Array, ""]


class LoopResult(eqx.Module):
    """The trained policy, why training ended, and the first iteration whose
    update made the policy non-finite (`-1` if none)."""

    policy: AbstractPolicy
    stop_reason: Int[Array, ""]
    diverged_at: Int[Array, ""]


def _finite(policy: AbstractPolicy) -> Bool[Array, ""]:
    """Whether every floating-point parameter of `policy` is finite."""
    leaves = jax.tree.leaves(eqx.filter(policy, eqx.is_inexact_array))
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _check_training_log(algorithm: AbstractAlgorithm, log: dict[str, Any]) -> None:
    expected = set(algorithm.training_log_names)
    if set(log) != expected:
        raise TypeError(
            f"{type(algorithm).__name__}.update returned a training log with "
            f"entries {sorted(log)}, but its training_log_names are "
            f"{sorted(expected)}; make the two agree."
        )


def _reported(callback: AbstractCallback, state: PyTree) -> dict[str, Any]:
    """The callbacks' reported metrics, as float32 scalars."""
    reported = callback.metrics(state)
    for name, value in reported.items():
        if jnp.shape(value) != ():
            raise TypeError(
                f"{type(callback).__name__}.metrics reported {name!r} with shape "
                f"{jnp.shape(value)}; report scalars."
            )
    return {name: jnp.asarray(value, jnp.float32) for name, value in reported.items()}


def _stop_reason(
    *,
    diverged: Bool[Array, ""],
    interrupted: Bool[Array, ""],
    keep_going: Bool[Array, ""],
    finished: Bool[Array, ""],
) -> Int[Array, ""]:
    """The first that applies: diverged, interrupted, stopped, completed, running."""
    reason = jnp.where(finished, StopReason.COMPLETED, StopReason.RUNNING)
    reason = jnp.where(keep_going, reason, StopReason.STOPPED)
    reason = jnp.where(interrupted, StopReason.INTERRUPTED, reason)
    return jnp.where(diverged, StopReason.DIVERGED, reason).astype(jnp.int32)


def _training_context(
    algorithm: AbstractAlgorithm,
    env: AbstractEnv,
    total_timesteps: Int[Array, ""],
    carry: LoopCarry,
    locals: dict[str, Any],
    member: Int[Array, ""],
) -> TrainingContext:
    return TrainingContext(
        env=env,
        locals=locals,
        policy=carry.policy,
        algorithm_state=carry.algorithm_state,
        training_log=carry.training_log,
        state=carry.callback_state,
        algorithm=algorithm,
        iteration=carry.iteration,
        timestep=carry.iteration * algorithm.steps_per_iteration,
        total_timesteps=total_timesteps,
        stop_reason=carry.stop_reason,
        member=member,
        reported=carry.reported,
    )


def start_loop(
    algorithm: AbstractAlgorithm,
    env: AbstractEnv,
    policy: AbstractPolicy,
    callback: AbstractCallback,
    total_timesteps: Int[Array, ""],
    key: Key[Array, ""],
    initial: LoopCarry | None = None,
    member: Int[Array, ""] | int = 0,
) -> LoopCarry:
    """The carry before the first iteration, after `reset` and `on_training_start`.

    `initial`, the arrays of a carry saved earlier (a checkpoint), replaces
    everything the loop would make: the callbacks still get `reset` and
    `on_training_start` (with the restored policy and counters, so that host
    sides such as loggers start), then their restored states replace the
    fresh ones.
    """
    num_iterations = total_timesteps // algorithm.steps_per_iteration
    env_key, reset_key, start_key, iteration_key, end_key = jax.random.split(
        loop_key(key), 5
    )
    init_key = jax.random.fold_in(end_key, 1)
    algorithm_state = algorithm.init(env, policy, num_iterations, key=init_key)
    env_state, observation = jax.vmap(env.reset)(
        key=jax.random.split(env_key, algorithm.num_envs)
    )
    env_carry = EnvCarry(
        env_state,
        observation,
        jnp.zeros(algorithm.num_envs),
        jnp.zeros(algorithm.num_envs, jnp.int32),
    )
    training_log = {
        name: jnp.asarray(jnp.nan, jnp.float32) for name in algorithm.training_log_names
    }
    locals_ = {"algorithm": algorithm, "key": key}
    member = jnp.asarray(member, jnp.int32)
    callback_state = callback.reset(
        ResetContext(
            env=env,
            locals=locals_,
            policy=policy,
            algorithm_state=algorithm_state,
            training_log=training_log,
            state=None,
        ),
        key=reset_key,
    )
    carry = LoopCarry(
        policy=policy,
        algorithm_state=algorithm_state,
        env=env_carry,
        callback_state=callback_state,
        training_log=training_log,
        reported={},
        iteration=jnp.asarray(0, jnp.int32),
        stop_reason=jnp.asarray(StopReason.RUNNING, jnp.int32),
        diverged_at=jnp.asarray(-1, jnp.int32),
        key=iteration_key,
    )
    fresh_states = carry.callback_state
    if initial is not None:
        # What callbacks report exists only after `on_training_start`: the
        # restored values are put in as they are.
        static = eqx.partition(dataclasses.replace(carry, reported={}), eqx.is_array)[1]
        carry = eqx.combine(dataclasses.replace(initial, reported={}), static)
        carry = dataclasses.replace(
            carry, callback_state=fresh_states, reported=initial.reported
        )
    started = callback.on_training_start(
        _training_context(algorithm, env, total_timesteps, carry, locals_, member),
        key=start_key,
    )
    if initial is None:
        reported = jax.tree.map(
            lambda _: jnp.asarray(jnp.nan, jnp.float32), _reported(callback, started)
        )
        carry = dataclasses.replace(carry, callback_state=started, reported=reported)
    else:
        # The restored states carry no dependence on the host calls just made
        # (a logger's start): the barrier orders every later call after them.
        restored, _ = jax.lax.optimization_barrier(
            (eqx.filter(initial.callback_state, eqx.is_array), started)
        )
        restored = eqx.combine(restored, eqx.partition(started, eqx.is_array)[1])
        carry = dataclasses.replace(carry, callback_state=restored)
    finished = carry.iteration >= num_iterations
    # A run that a callback stopped (early stopping) stays stopped when resumed;
    # one interrupted, by Ctrl-C or a crash, goes on.
    stopped = (
        jnp.asarray(False)
        if initial is None
        else (initial.stop_reason == StopReason.STOPPED)
    )
    return dataclasses.replace(
        carry,
        stop_reason=jnp.select(
            [finished, stopped],
            [StopReason.COMPLETED, StopReason.STOPPED],
            StopReason.RUNNING,
        ).astype(jnp.int32),
    )


@eqx.filter_jit
def run_loop(
    algorithm: AbstractAlgorithm,
    env: AbstractEnv,
    policy: AbstractPolicy,
    callback: AbstractCallback,
    total_timesteps: Int[Array, ""],
    key: Key[Array, ""],
    *,
    poll_every: int,
    stop_on_divergence: bool = True,
    initial: LoopCarry | None = None,
    member: Int[Array, ""] | int = 0,
) -> LoopResult:
    """Train `policy` for `total_timesteps // steps_per_iteration` iterations.

    `poll_every`: iterations between two polls for Ctrl-C. With
    `stop_on_divergence`, an update that makes the policy non-finite is
    discarded and training stops with `StopReason.DIVERGED`. `initial`: the
    arrays of a saved carry to continue from (see `start_loop`). `member` is
    this run's index when `learn` trains many (see `lerax.algorithm._members`).

    Iteration contexts and the final training context hold the loop's carry
    as `locals["carry"]` (at the start of the iteration; at the end), which
    is what a checkpoint saves.
    """
    return loop(
        algorithm,
        env,
        policy,
        callback,
        total_timesteps,
        key,
        poll_every=poll_every,
        stop_on_divergence=stop_on_divergence,
        initial=initial,
        member=member,
    )


def loop(
    algorithm: AbstractAlgorithm,
    env: AbstractEnv,
    policy: AbstractPolicy,
    callback: AbstractCallback,
    total_timesteps: Int[Array, ""],
    key: Key[Array, ""],
    *,
    poll_every: int,
    stop_on_divergence: bool = True,
    initial: LoopCarry | None = None,
    member: Int[Array, ""] | int = 0,
) -> LoopResult:
    """`run_loop` unjitted, for `learn`'s many-member program to `vmap`."""
    member = jnp.asarray(member, jnp.int32)
    steps = algorithm.steps_per_iteration
    num_iterations = total_timesteps // steps
    end_key = jax.random.split(loop_key(key), 5)[4]
    run_key = key  # `key` is rebound per iteration below
    shared: dict[str, Any] = dict(
        env=env, locals={"algorithm": algorithm, "key": run_key}
    )
    carry = start_loop(
        algorithm, env, policy, callback, total_timesteps, key, initial, member
    )

    def iteration(carry: LoopCarry) -> LoopCarry:
        key, reset_key, rollout_key, update_key, hook_key, stop_key = jax.random.split(
            carry.key, 6
        )
        hook_fields: dict[str, Any] = dict(
            algorithm_state=carry.algorithm_state,
            training_log=carry.training_log,
            **shared,
        )
        reset_ctx = ResetContext(
            policy=carry.policy, state=carry.callback_state, **hook_fields
        )
        step_state = jax.vmap(lambda k: callback.step_reset(reset_ctx, key=k))(
            jax.random.split(reset_key, algorithm.num_envs)
        )

        def act(observation: Array, key: Key[Array, ""]) -> tuple[Array, PyTree]:
            return algorithm.act(
                carry.policy, carry.algorithm_state, observation, key=key
            )

        env_carry, step_state, rollout = collect_rollout(
            env,
            carry.policy,
            act,
            callback,
            carry.env,
            step_state,
            hook_fields,
            num_steps=algorithm.num_steps,
            key=rollout_key,
        )
        policy, algorithm_state, training_log = algorithm.update(
            carry.policy, carry.algorithm_state, rollout, key=update_key
        )
        _check_training_log(algorithm, training_log)
        finite = _finite(policy)
        done = carry.iteration + 1
        diverged_at = jnp.where(
            (carry.diverged_at < 0) & ~finite, done, carry.diverged_at
        )
        diverged = ~finite if stop_on_divergence else jnp.asarray(False)
        if stop_on_divergence:  # keep the last finite policy
            new, static = eqx.partition(policy, eqx.is_array)
            old = eqx.filter(carry.policy, eqx.is_array)
            kept = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
            policy = eqx.combine(kept, static)
        iteration_ctx = IterationContext(
            policy=policy,
            algorithm_state=algorithm_state,
            training_log=training_log,
            state=carry.callback_state,
            step_state=step_state,
            iteration=done,
            timestep=done * steps,
            member=member,
            reported=carry.reported,
            env=env,
            locals={"algorithm": algorithm, "carry": carry, "key": run_key},
        )
        callback_state = callback.on_iteration(iteration_ctx, key=hook_key)
        keep_going = callback.continue_training(
            eqx.tree_at(
                lambda c: c.state,
                iteration_ctx,
                callback_state,
                is_leaf=lambda x: x is None,
            ),
            key=stop_key,
        )
        interrupted = jax.lax.cond(
            done % poll_every == 0, poll_interrupt, lambda: jnp.asarray(False)
        )
        stop_reason = _stop_reason(
            diverged=diverged,
            interrupted=interrupted,
            keep_going=jnp.asarray(keep_going, bool),
            finished=done >= num_iterations,
        )
        return LoopCarry(
            policy=policy,
            algorithm_state=algorithm_state,
            env=env_carry,
            callback_state=callback_state,
            training_log=training_log,
            reported=_reported(callback, callback_state),
            iteration=done,
            stop_reason=stop_reason,
            diverged_at=diverged_at,
            key=key,
        )

    # The carry of a while loop must be arrays only: the static half (activation
    # functions, static fields) is closed over instead.
    dynamic, static = eqx.partition(carry, eqx.is_array)

    def running(dynamic: LoopCarry) -> Bool[Array, ""]:
        return dynamic.stop_reason == StopReason.RUNNING

    def body(dynamic: LoopCarry) -> LoopCarry:
        # Members that have stopped go through the body on frozen state until
        # the last one stops: their host calls must not repeat.
        with host.while_running(running(dynamic)):
            carry = iteration(eqx.combine(dynamic, static))
        new = eqx.partition(carry, eqx.is_array)[0]
        if not members.axes():
            return new
        return jax.tree.map(
            lambda n, o: jnp.where(running(dynamic), n, o), new, dynamic
        )

    # With many members every one loops until the last stops (their bodies may
    # reduce across members, which needs all of them, on every device).
    def any_running(dynamic: LoopCarry) -> Bool[Array, ""]:
        return members.any_member(running(dynamic))

    dynamic = jax.lax.while_loop(any_running, body, dynamic)
    carry = eqx.combine(dynamic, static)
    callback.on_training_end(
        _training_context(
            algorithm,
            env,
            total_timesteps,
            carry,
            {"algorithm": algorithm, "carry": carry, "key": run_key},
            member,
        ),
        key=end_key,
    )
    return LoopResult(carry.policy, carry.stop_reason, carry.diverged_at)
