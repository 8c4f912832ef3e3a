"""Shared fixtures and helpers for the Lerax core tests.

Tests run with `--import-mode=importlib`, where test modules cannot import this
file, so helpers are handed out through fixtures. Callbacks used by several
tests keep only hashable, value-equal static fields (no per-test objects) so
that the jitted training loop compiled for one test is reused by the next.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import equinox as eqx
import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Key, PyTree

from lerax.algorithm import PPO
from lerax.callback import (
    AbstractCallback,
    AbstractStatelessCallback,
    IterationContext,
    ResetContext,
    StepContext,
    TrainingContext,
)
from lerax.env import AbstractEnv
from lerax.env.classic_control import CartPole
from lerax.policy import AbstractActorCriticPolicy

# --------------------------------------------------------------------------- #
# Host-side event recording
# --------------------------------------------------------------------------- #

#: Every `RecordingCallback` appends `(name, event, payload)` here, in the
#: order the compiled program runs its (ordered) host callbacks.
EVENTS: list[tuple[str, str, dict[str, Any]]] = []


def _int(x: int) -> Array:
    return jnp.asarray(x, jnp.int32)


class RecordingCallback(AbstractCallback):
    """Counts every hook call in its state and reports each call to the host.

    Global state: integer counters of `reset`, `on_training_start`,
    `on_iteration`, `continue_training`-visible iterations and
    `on_training_end`, plus the totals of `step_reset` and `on_step` calls
    summed from the step states at each `on_iteration`.

    Step state (per environment, recreated by `step_reset` every rollout):
    `resets` (1 once made), `steps` (incremented by `on_step`), the global
    iteration count seen when it was made, and a `num_steps`-long history of
    what each `StepContext` showed (reward, flags, episode return/length).
    """

    name: str = eqx.field(static=True)
    num_steps: int = eqx.field(static=True)
    record_steps: bool = eqx.field(static=True, default=True)

    def _emit(self, event: str, **payload: PyTree) -> None:
        name = self.name

        def host(payload: dict[str, Any]) -> None:
            EVENTS.append((name, event, jax.tree.map(np.asarray, payload)))

        jax.debug.callback(host, payload, ordered=True)

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> PyTree:
        assert ctx.state is None, "reset must see state=None"
        state = {
            "resets": _int(1),
            "starts": _int(0),
            "iterations": _int(0),
            "ends": _int(0),
            "step_resets": _int(0),
            "steps": _int(0),
        }
        self._emit("reset", state=state)
        return state

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> PyTree:
        n = self.num_steps
        # The key is what differs between environments: with only unbatched
        # arguments, a vmapped host callback would run once, not once per env.
        self._emit(
            "step_reset",
            iterations=ctx.state["iterations"],
            key=jax.random.key_data(key),
        )
        return {
            "resets": _int(1),
            "steps": _int(0),
            "reset_iteration": ctx.state["iterations"],
            "reward": jnp.full(n, jnp.nan, jnp.float32),
            "terminated": jnp.zeros(n, bool),
            "truncated": jnp.zeros(n, bool),
            "done": jnp.zeros(n, bool),
            "episode_return": jnp.full(n, jnp.nan, jnp.float32),
            "episode_length": jnp.full(n, -1, jnp.int32),
        }

    def on_step(self, ctx: StepContext, *, key: Key[Array, ""]) -> PyTree:
        s = dict(ctx.state)
        i = s["steps"]
        if self.record_steps:
            self._emit("on_step", step=i)
        for field in (
            "reward",
            "terminated",
            "truncated",
            "done",
            "episode_return",
            "episode_length",
        ):
            value = jnp.asarray(getattr(ctx, field)).astype(s[field].dtype)
            s[field] = s[field].at[i].set(value)
        s["steps"] = i + 1
        return s

    def on_training_start(self, ctx: TrainingContext, *, key: Key[Array, ""]) -> PyTree:
        state = dict(ctx.state, starts=ctx.state["starts"] + 1)
        self._emit(
            "training_start",
            iteration=ctx.iteration,
            timestep=ctx.timestep,
            total_timesteps=ctx.total_timesteps,
            state=state,
        )
        return state

    def on_iteration(self, ctx: IterationContext, *, key: Key[Array, ""]) -> PyTree:
        state = dict(
            ctx.state,
            iterations=ctx.state["iterations"] + 1,
            step_resets=ctx.state["step_resets"] + jnp.sum(ctx.step_state["resets"]),
            steps=ctx.state["steps"] + jnp.sum(ctx.step_state["steps"]),
        )
        self._emit(
            "on_iteration",
            iteration=ctx.iteration,
            timestep=ctx.timestep,
            step_state=ctx.step_state,
            state=state,
        )
        return state

    def continue_training(self, ctx: IterationContext, *, key: Key[Array, ""]):
        self._emit("continue_training", iteration=ctx.iteration, state=ctx.state)
        return jnp.asarray(True)

    def on_training_end(self, ctx: TrainingContext, *, key: Key[Array, ""]) -> PyTree:
        state = dict(ctx.state, ends=ctx.state["ends"] + 1)
        self._emit(
            "training_end",
            iteration=ctx.iteration,
            timestep=ctx.timestep,
            total_timesteps=ctx.total_timesteps,
            state=state,
        )
        return state


@pytest.fixture
def events() -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    """The global host event log, emptied before and after the test."""
    EVENTS.clear()
    yield EVENTS
    EVENTS.clear()


@pytest.fixture
def recording_callback() -> Callable[..., RecordingCallback]:
    """Factory: `recording_callback(name, num_steps, record_steps=True)`."""
    return RecordingCallback


# --------------------------------------------------------------------------- #
# Trace and compile counting
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(eq=False)
class TraceCounter:
    """A mutable counter, hashed by identity so it can be a static field."""

    count: int = 0


class TraceCountingCallback(AbstractStatelessCallback):
    """Increments `counter.count` each time `reset` runs, i.e. once per trace.

    `reset` is plain Python called while `train` is being traced, so the count
    is the number of times the training loop was traced.
    """

    counter: TraceCounter = eqx.field(static=True)

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        self.counter.count += 1
        return None


@pytest.fixture
def trace_counting_callback() -> Callable[[TraceCounter], TraceCountingCallback]:
    return TraceCountingCallback


@pytest.fixture
def trace_counter() -> TraceCounter:
    return TraceCounter()


_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


@dataclasses.dataclass
class CompileCount:
    """Names of the functions JAX traced and compiled (XLA) inside the block."""

    compiled: list[str] = dataclasses.field(default_factory=list)
    traced: list[str] = dataclasses.field(default_factory=list)

    @property
    def compiles(self) -> int:
        return len(self.compiled)

    def compiles_of(self, name: str) -> int:
        return sum(name in compiled for compiled in self.compiled)


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileCount]:
    """Record XLA backend compilations and jaxpr traces inside the block."""
    count = CompileCount()

    def listener(event: str, duration: float, **kwargs: Any) -> None:
        name = str(kwargs.get("fun_name", "?"))
        if event == _COMPILE_EVENT:
            count.compiled.append(name)
        elif event == _TRACE_EVENT:
            count.traced.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


@pytest.fixture
def compile_counter() -> Callable[[], contextlib.AbstractContextManager]:
    """`with compile_counter() as c:` records compiles (`c.compiled`) and traces."""
    return count_compiles


# --------------------------------------------------------------------------- #
# Evaluation
# --------------------------------------------------------------------------- #


@eqx.filter_jit
def evaluate_greedy(
    policy: AbstractActorCriticPolicy, env: AbstractEnv, keys: Key[Array, " E"]
) -> tuple[Array, Array]:
    """Play one greedy episode per key; return `(returns, lengths)`.

    Each episode is a `jax.lax.while_loop` until `terminated | truncated`;
    episodes are `vmap`ped over `keys`.
    """

    def episode(key: Key[Array, ""]) -> tuple[Array, Array]:
        reset_key, key = jax.random.split(key)
        state, obs = env.reset(key=reset_key)

        def cond(carry):
            return ~carry[4]

        def body(carry):
            state, obs, ret, length, _, key = carry
            key, step_key = jax.random.split(key)
            action = policy.predict(obs)
            state, obs, reward, terminated, truncated = env.step(
                state, action, key=step_key
            )
            return (
                state,
                obs,
                ret + reward,
                length + 1,
                terminated | truncated,
                key,
            )

        init = (state, obs, jnp.zeros(()), _int(0), jnp.asarray(False), key)
        _, _, ret, length, _, _ = jax.lax.while_loop(cond, body, init)
        return ret, length

    return jax.vmap(episode)(keys)


@pytest.fixture
def evaluate() -> Callable[..., tuple[Array, Array]]:
    """`evaluate(policy, env, num_episodes, key)` -> greedy `(returns, lengths)`."""

    def run(policy, env, num_episodes: int, key):
        returns, lengths = evaluate_greedy(
            policy, env, jax.random.split(key, num_episodes)
        )
        return np.asarray(returns), np.asarray(lengths)

    return run


# --------------------------------------------------------------------------- #
# Common objects
# --------------------------------------------------------------------------- #


@pytest.fixture
def env() -> CartPole:
    return CartPole()


@pytest.fixture
def small_ppo() -> PPO:
    """A cheap PPO for tests that exercise the loop, not learning."""
    return PPO(num_envs=2, num_steps=8, num_epochs=1, num_minibatches=1)


def assert_trees_equal(a: PyTree, b: PyTree) -> None:
    """Same structure and bitwise-identical array leaves."""
    a_arrays, a_static = eqx.partition(a, eqx.is_array)
    b_arrays, b_static = eqx.partition(b, eqx.is_array)
    assert eqx.tree_equal(a_static, b_static)
    assert jax.tree.structure(a_arrays) == jax.tree.structure(b_arrays)
    for x, y in zip(jax.tree.leaves(a_arrays), jax.tree.leaves(b_arrays), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture
def trees_equal() -> Callable[[PyTree, PyTree], None]:
    return assert_trees_equal
