"""Check that an algorithm runs the training lifecycle as Lerax promises every callback."""

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Int, Key, PyTree

from lerax import host
from lerax.algorithm._algorithm import AbstractAlgorithm
from lerax.callback._callback import AbstractCallback
from lerax.callback.callback_list import CallbackList
from lerax.callback.context import (
    IterationContext,
    ResetContext,
    StepContext,
    StopReason,
    TrainingContext,
)
from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractPolicy

ITERATIONS = 3
"""Iterations of the runs `check_algorithm` makes."""


class _Journal:
    """The host side of a `_LifecycleRecorder`: every event, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, int]]] = []

    def record(self, *values: np.ndarray, event: str, names: tuple[str, ...]) -> None:
        self.events.append(
            (event, {n: int(v) for n, v in zip(names, values, strict=True)})
        )


class _Counts(eqx.Module):
    """How often each hook ran; `token` orders the host calls."""

    resets: Int[Array, ""]
    starts: Int[Array, ""]
    step_resets: Int[Array, ""]
    steps: Int[Array, ""]
    iterations: Int[Array, ""]
    token: Int[Array, ""]


class _LifecycleRecorder(AbstractCallback):
    """Counts every hook call in its states and reports each hook to the host.

    Per-step hooks are counted in the step state and summed at `on_iteration`,
    so no host call runs per step.
    """

    handle: Int[Array, ""]

    def _report(self, ctx_state: _Counts, event: str, **values: Any) -> Int[Array, ""]:
        counts = {
            f.name: getattr(ctx_state, f.name)
            for f in dataclasses.fields(ctx_state)
            if f.name != "token"
        }
        values = {**counts, **values}
        return host.call(
            "record",
            self.handle,
            *values.values(),
            after=ctx_state.token,
            event=event,
            names=tuple(values),
        )

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> _Counts:
        zero = jnp.zeros((), jnp.int32)
        return _Counts(zero + 1, zero, zero, zero, zero, host.new_token())

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> PyTree:
        return {"resets": jnp.ones((), jnp.int32), "steps": jnp.zeros((), jnp.int32)}

    def on_step(self, ctx: StepContext, *, key: Key[Array, ""]) -> PyTree:
        return {**ctx.state, "steps": ctx.state["steps"] + 1}

    def on_training_start(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> _Counts:
        state = eqx.tree_at(lambda s: s.starts, ctx.state, ctx.state.starts + 1)
        token = self._report(state, "start", timestep=ctx.timestep)
        return eqx.tree_at(lambda s: s.token, state, token)

    def on_iteration(self, ctx: IterationContext, *, key: Key[Array, ""]) -> _Counts:
        state = _Counts(
            ctx.state.resets,
            ctx.state.starts,
            ctx.state.step_resets + jnp.sum(ctx.step_state["resets"]),
            ctx.state.steps + jnp.sum(ctx.step_state["steps"]),
            ctx.state.iterations + 1,
            ctx.state.token,
        )
        token = self._report(
            state, "iteration", iteration=ctx.iteration, timestep=ctx.timestep
        )
        return eqx.tree_at(lambda s: s.token, state, token)

    def continue_training(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> Bool[Array, ""]:
        self._report(ctx.state, "continue", iteration=ctx.iteration)
        return jnp.asarray(True)

    def on_training_end(self, ctx: TrainingContext, *, key: Key[Array, ""]) -> _Counts:
        self._report(
            ctx.state, "end", timestep=ctx.timestep, stop_reason=ctx.stop_reason
        )
        return ctx.state


class _StopAfter(AbstractCallback):
    """Stops training once `iterations` iterations have finished (an array, so
    one compiled loop serves every value, and it can be `vmap`ped)."""

    iterations: Int[Array, ""]

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        return None

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        return None

    def continue_training(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> Bool[Array, ""]:
        return ctx.iteration < self.iterations


@dataclass
class AlgorithmReport:
    """What `check_algorithm` verified, for display in an algorithm's own tests."""

    algorithm: str
    checked: list[str] = field(default_factory=list)


def _default_policy(
    algorithm: AbstractAlgorithm, env: AbstractEnv, key: Key[Array, ""]
) -> AbstractPolicy:
    """The first of Lerax's MLP policies that `algorithm` accepts."""
    from lerax.policy import MLPActorCriticPolicy, MLPQPolicy

    errors = []
    for kind in (MLPActorCriticPolicy, MLPQPolicy):
        policy = kind(env=env, key=key)
        try:
            algorithm.check(env, policy)
        except (TypeError, ValueError) as error:
            errors.append(str(error))
        else:
            return policy
    raise AssertionError(
        f"no Lerax MLP policy suits {type(algorithm).__name__}; pass policy=...: "
        f"{' / '.join(errors)}"
    )


def _recorder() -> tuple[_LifecycleRecorder, _Journal]:
    journal = _Journal()
    return _LifecycleRecorder(host.register(journal)), journal


def _compiles_during(run: Any) -> list[str]:
    compiled: list[str] = []

    def listener(event: str, duration_secs: float, **kwargs: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(str(kwargs.get("fun_name", "?")))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        jax.block_until_ready(run())
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return compiled


def _check_lifecycle(
    name: str, algorithm: AbstractAlgorithm, journal: _Journal, iterations: int
) -> None:
    kinds = [event for event, _ in journal.events]
    expected = ["start", *["iteration", "continue"] * iterations, "end"]
    assert kinds == expected, f"{name}: hooks reported {kinds}, not {expected}"
    spi, envs = algorithm.steps_per_iteration, algorithm.num_envs
    for i, (_, values) in enumerate(journal.events[1:-1:2], start=1):
        want = {
            "resets": 1,
            "starts": 1,
            "iterations": i,
            "iteration": i,
            "timestep": i * spi,
            "step_resets": i * envs,
            "steps": i * spi,
        }
        got = {key: values[key] for key in want}
        assert got == want, (
            f"{name}: after iteration {i} the hooks had run {got}, expected {want} "
            f"(step_reset once per env per iteration, on_step once per env step)"
        )
    end = journal.events[-1][1]
    assert end["timestep"] == iterations * spi, f"{name}: end at {end['timestep']}"


def check_algorithm(
    algorithm: AbstractAlgorithm,
    env: AbstractEnv,
    policy: AbstractPolicy | None = None,
) -> AlgorithmReport:
    """Assert that `algorithm` trains through Lerax's loop as every callback expects.

    Runs short trainings of `ITERATIONS` iterations and checks, with a callback
    that records every hook under `jax.jit`: the order and counts of the hooks
    (`reset` and `on_training_start` once, `step_reset` once per environment
    and `on_step` once per environment step each iteration, `on_iteration`
    then `continue_training` once per iteration, `on_training_end` once); the
    stop reason (`completed`, and `stopped` when a callback's
    `continue_training` ends training, which really stops it); that a second
    `learn` with new callbacks of the same kinds compiles nothing; and that the
    loop runs under `eqx.filter_vmap` over keys, where seeds that stop at
    different iterations log each of their iterations exactly once.

    `policy` defaults to the first of `MLPActorCriticPolicy` and `MLPQPolicy`
    that the algorithm accepts. Raises `AssertionError` saying what went
    wrong; returns a report otherwise.
    """
    from lerax.logging import LoggingCallback
    from lerax.testing.recording import RecordingBackend

    name = type(algorithm).__name__
    policy_key, key = jax.random.split(jax.random.key(0))
    policy = (
        policy if policy is not None else _default_policy(algorithm, env, policy_key)
    )
    report = AlgorithmReport(name)
    total = ITERATIONS * algorithm.steps_per_iteration

    # Both runs have the same kinds of callbacks: the second must compile nothing.
    recorder, journal = _recorder()
    never = _StopAfter(jnp.asarray(ITERATIONS + 1, jnp.int32))
    algorithm.learn(env, policy, total, key=key, callback=[recorder, never])
    _check_lifecycle(name, algorithm, journal, ITERATIONS)
    reason = journal.events[-1][1]["stop_reason"]
    assert reason == StopReason.COMPLETED, (
        f"{name}: stop reason {reason}, not completed"
    )
    report.checked.append(f"{name}: hook order and counts under jit, completed")

    recorder, journal = _recorder()
    stop = _StopAfter(jnp.asarray(1, jnp.int32))
    compiled = _compiles_during(
        lambda: algorithm.learn(env, policy, total, key=key, callback=[recorder, stop])
    )
    loops = [c for c in compiled if "run_loop" in c]
    assert not loops, f"{name}: a second learn with new callbacks compiled {loops}"
    report.checked.append(f"{name}: a second learn compiles nothing")
    _check_lifecycle(name, algorithm, journal, 1)
    reason = journal.events[-1][1]["stop_reason"]
    assert reason == StopReason.STOPPED, f"{name}: stop reason {reason}, not stopped"
    report.checked.append(f"{name}: continue_training stops it, reason stopped")

    backend = RecordingBackend()
    logger = LoggingCallback(backend)
    stops = jnp.asarray([ITERATIONS - 1, ITERATIONS], jnp.int32)

    def one_seed(key: Key[Array, ""], stop_after: Int[Array, ""]) -> AbstractPolicy:
        callback = CallbackList([logger, _StopAfter(stop_after)])
        return algorithm.train(env, policy, callback, total, key=key)

    keys = jax.random.split(key, 2)
    jax.block_until_ready(eqx.filter_vmap(one_seed)(keys, stops))
    logger.close()
    iterations = sorted(int(m["time/iteration"]) for _, m in backend.iterations)
    expected = sorted([*range(1, ITERATIONS), *range(1, ITERATIONS + 1)])
    assert iterations == expected, (
        f"{name}: under vmap, two seeds stopping after {ITERATIONS - 1} and "
        f"{ITERATIONS} iterations logged iterations {iterations}, not {expected}"
    )
    report.checked.append(f"{name}: runs under vmap, each iteration logged once")
    return report
