"""Evaluate the policy on episodes of its own inside the jitted loop, and stop on it."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Key, PyTree

from lerax import host, members
from lerax.callback._callback import AbstractCallback
from lerax.callback.context import IterationContext, ResetContext, TrainingContext
from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractPolicy

MAX_EPISODE_STEPS = 100_000
"""Default bound on the length of one evaluation episode, for envs without a time limit."""


class EvalState(eqx.Module):
    """What an [`EvalCallback`][lerax.callback.EvalCallback] carries.

    The last evaluation's statistics (NaN before the first), whether this
    iteration evaluated (`fresh`), the best mean return so far with the
    iteration it was reached at and the policy's arrays then, and how many
    evaluations have passed since it last improved.
    """

    return_mean: Float[Array, ""]
    return_std: Float[Array, ""]
    length_mean: Float[Array, ""]
    fresh: Bool[Array, ""]
    evaluations: Int[Array, ""]
    best_return: Float[Array, ""]
    best_iteration: Int[Array, ""]
    best_policy: PyTree
    since_best: Int[Array, ""]
    token: Int[Array, ""]


class _EvalResults:
    """The host side: the best policy, delivered once when training ends."""

    def __init__(self) -> None:
        self.best_policy: AbstractPolicy | None = None
        self.best_return: float | list[float] | None = None
        self.best_timestep: int | list[int] | None = None
        self.evaluations = 0
        self._members: dict[int, tuple[list[Any], float, int, int]] = {}

    def finish(
        self,
        member: Any,
        best_return: Any,
        best_timestep: Any,
        evaluations: Any,
        *leaves: Any,
        running: Any,
        treedef: Any,
        static: Any,
        many: bool,
    ) -> None:
        """Called once per crossing with a leading axis of members (one for a
        single run); with many members, results gather by member index."""
        del running  # at training end every member reports
        if not many:
            self.evaluations = int(evaluations[0])
            if self.evaluations == 0:
                self.best_policy = self.best_return = self.best_timestep = None
                return
            arrays = jax.tree.unflatten(treedef, [jnp.asarray(x[0]) for x in leaves])
            self.best_policy = eqx.combine(arrays, static)
            self.best_return = float(best_return[0])
            self.best_timestep = int(best_timestep[0])
            return
        for i, index in enumerate(member.tolist()):
            self._members[index] = (
                [x[i] for x in leaves],
                float(best_return[i]),
                int(best_timestep[i]),
                int(evaluations[i]),
            )
        order = sorted(self._members)
        stacked = [
            jnp.stack([jnp.asarray(self._members[m][0][j]) for m in order])
            for j in range(len(leaves))
        ]
        self.best_policy = eqx.combine(jax.tree.unflatten(treedef, stacked), static)
        self.best_return = [self._members[m][1] for m in order]
        self.best_timestep = [self._members[m][2] for m in order]
        self.evaluations = min(self._members[m][3] for m in order)


def evaluate_episodes(
    policy: AbstractPolicy,
    env: AbstractEnv,
    keys: Key[Array, " episodes"],
    *,
    deterministic: bool = True,
    max_episode_steps: int = MAX_EPISODE_STEPS,
) -> tuple[Float[Array, " episodes"], Int[Array, " episodes"]]:
    """Play one episode per key, all at once (`vmap`); return returns and lengths.

    Greedy actions (`policy.predict(observation)`) when `deterministic`, else
    sampled ones. An episode ends when the env terminates or truncates it, or
    after `max_episode_steps` steps.
    """

    def episode(key: Key[Array, ""]) -> tuple[Float[Array, ""], Int[Array, ""]]:
        reset_key, key = jax.random.split(key)
        state, observation = env.reset(key=reset_key)

        def running(carry):
            *_, length, done, _ = carry
            return ~done & (length < max_episode_steps)

        def step(carry):
            state, observation, total, length, _, key = carry
            key, act_key, step_key = jax.random.split(key, 3)
            action = policy.predict(observation, key=None if deterministic else act_key)
            state, observation, reward, terminated, truncated = env.step(
                state, action, key=step_key
            )
            done = jnp.asarray(terminated | truncated)
            return state, observation, total + reward, length + 1, done, key

        start = (
            state,
            observation,
            jnp.zeros((), jnp.float32),
            jnp.zeros((), jnp.int32),
            jnp.asarray(False),
            key,
        )
        _, _, total, length, _, _ = jax.lax.while_loop(running, step, start)
        return total, length

    return jax.vmap(episode)(keys)


def _due(fresh: Bool[Array, ""]) -> Bool[Array, ""]:
    """Whether to evaluate: `fresh` for one run; with members, whether any
    running member is `fresh`.

    Under `vmap` a `lax.cond` whose predicate differs across members becomes a
    `select` that runs both branches, so the evaluation would run every
    iteration. Reduced across members, the predicate is one value for all of
    them and the `cond` stays a `cond`. Members that have stopped are left out:
    their frozen iteration may be due every time.
    """
    if not members.axes():
        return fresh
    return members.any_member(fresh & host.running())


def _positive_int(name: str, value: Any, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int ({meaning}), got {value!r}.")
    if value <= 0:
        raise ValueError(f"{name} must be >= 1 ({meaning}), got {value}.")


class EvalCallback(AbstractCallback):
    """Every `every` iterations, play `episodes` episodes of the current policy.

    The episodes are separate from training: the env's own copies, reset for
    each evaluation and run side by side (`vmap`) inside the jitted loop, with
    greedy actions (`deterministic=False`: sampled ones). Iterations between
    evaluations skip it entirely (`lax.cond`). Pass `env` to evaluate on
    another env (with the same spaces) than the one trained on.

    Reported to logging backends, at evaluation iterations only, in the same
    row as that iteration's training metrics: `eval/return_mean`,
    `eval/return_std` and `eval/length_mean`.

    The best policy by mean return is kept in the state; after training it
    is `best_policy` (with `best_return` and `best_timestep`), or `None` if no
    evaluation ran. When `learn` trains many members, each member evaluates
    its own policy, all of them together and only at evaluation iterations
    (members run in lock-step, so they are due together), and `best_policy`
    holds each member's best stacked on a leading axis, with `best_return` and
    `best_timestep` lists by member.

    Early stopping, as Stable-Baselines3's two stop callbacks: `stop_at` ends
    training (stop reason `"stopped"`) at the first evaluation whose mean return
    reaches it; `patience` ends it when that many evaluations in a row have not
    beaten the best mean return.
    """

    env: AbstractEnv | None
    every: Int[Array, ""]
    episodes: int = eqx.field(static=True)
    deterministic: bool = eqx.field(static=True)
    stop_at: Float[Array, ""]
    patience: Int[Array, ""]
    max_episode_steps: int = eqx.field(static=True)
    handle: Int[Array, ""]

    def __init__(
        self,
        env: AbstractEnv | None = None,
        *,
        every: int = 16,
        episodes: int = 16,
        deterministic: bool = True,
        stop_at: float | None = None,
        patience: int | None = None,
        max_episode_steps: int = MAX_EPISODE_STEPS,
    ):
        if env is not None and not isinstance(env, AbstractEnv):
            raise TypeError(
                f"env must be an AbstractEnv to evaluate on, or None to evaluate "
                f"on the training env; got {type(env).__name__}."
            )
        _positive_int("every", every, "iterations between two evaluations")
        _positive_int("episodes", episodes, "episodes per evaluation")
        _positive_int("max_episode_steps", max_episode_steps, "steps per episode")
        if patience is not None:
            _positive_int(
                "patience", patience, "evaluations without improvement before stopping"
            )
        if stop_at is not None:
            if isinstance(stop_at, bool) or not isinstance(stop_at, int | float):
                raise TypeError(f"stop_at must be a number or None, got {stop_at!r}.")
            if math.isnan(stop_at):
                raise ValueError("stop_at must be a number, got NaN.")
        if not isinstance(deterministic, bool):
            raise TypeError(f"deterministic must be a bool, got {deterministic!r}.")
        # `every`, `stop_at` and `patience` are arrays: changing them reuses the
        # compiled loop. No threshold is +inf; no patience, the largest int32.
        self.env = env
        self.every = jnp.asarray(every, jnp.int32)
        self.episodes = episodes
        self.deterministic = deterministic
        self.stop_at = jnp.asarray(jnp.inf if stop_at is None else stop_at, jnp.float32)
        self.patience = jnp.asarray(
            jnp.iinfo(jnp.int32).max if patience is None else patience, jnp.int32
        )
        self.max_episode_steps = max_episode_steps
        self.handle = host.register(_EvalResults())

    @property
    def _results(self) -> _EvalResults:
        return host.lookup(self.handle)

    @property
    def best_policy(self) -> AbstractPolicy | None:
        """The policy with the best mean evaluation return of the last training."""
        return self._results.best_policy

    @property
    def best_return(self) -> float | list[float] | None:
        """That policy's mean evaluation return (a list by member for many)."""
        return self._results.best_return

    @property
    def best_timestep(self) -> int | list[int] | None:
        """The environment step at which that policy was evaluated (a list by
        member for many)."""
        return self._results.best_timestep

    def _env(self, ctx: Any) -> AbstractEnv:
        return ctx.env if self.env is None else self.env

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> EvalState:
        env = self._env(ctx)
        for which in ("observation_space", "action_space"):
            if getattr(env, which) != getattr(ctx.policy, which):
                raise ValueError(
                    f"EvalCallback's env {type(env).__name__} has another {which} "
                    f"({getattr(env, which)}) than the policy "
                    f"({getattr(ctx.policy, which)}); evaluate on an env like the "
                    f"one trained on."
                )
        nan = jnp.asarray(jnp.nan, jnp.float32)
        return EvalState(
            return_mean=nan,
            return_std=nan,
            length_mean=nan,
            fresh=jnp.asarray(False),
            evaluations=jnp.asarray(0, jnp.int32),
            best_return=jnp.asarray(-jnp.inf, jnp.float32),
            best_iteration=jnp.asarray(-1, jnp.int32),
            best_policy=eqx.filter(ctx.policy, eqx.is_array),
            since_best=jnp.asarray(0, jnp.int32),
            token=host.new_token(),
        )

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        return None

    def on_iteration(self, ctx: IterationContext, *, key: Key[Array, ""]) -> EvalState:
        state: EvalState = ctx.state
        env = self._env(ctx)

        def evaluate() -> tuple[Array, Array, Array]:
            returns, lengths = evaluate_episodes(
                ctx.policy,
                env,
                jax.random.split(key, self.episodes),
                deterministic=self.deterministic,
                max_episode_steps=self.max_episode_steps,
            )
            returns = returns.astype(jnp.float32)
            lengths = lengths.astype(jnp.float32)
            return jnp.mean(returns), jnp.std(returns), jnp.mean(lengths)

        def skip() -> tuple[Array, Array, Array]:
            return state.return_mean, state.return_std, state.length_mean

        fresh = ctx.iteration % self.every == 0
        results = jax.lax.cond(_due(fresh), evaluate, skip)
        if members.axes():  # a member that is not due keeps its last results
            results = jax.tree.map(
                lambda new, old: jnp.where(fresh, new, old), results, skip()
            )
        mean, std, length = results
        improved = fresh & (mean > state.best_return)
        current = eqx.filter(ctx.policy, eqx.is_array)
        best_policy = jax.tree.map(
            lambda new, old: jnp.where(improved, new, old), current, state.best_policy
        )
        return EvalState(
            return_mean=mean,
            return_std=std,
            length_mean=length,
            fresh=fresh,
            evaluations=state.evaluations + fresh,
            best_return=jnp.where(improved, mean, state.best_return),
            best_iteration=jnp.where(improved, ctx.iteration, state.best_iteration),
            best_policy=best_policy,
            since_best=jnp.where(
                fresh, jnp.where(improved, 0, state.since_best + 1), state.since_best
            ),
            token=state.token,
        )

    def continue_training(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> Bool[Array, ""]:
        state: EvalState = ctx.state
        solved = state.return_mean >= self.stop_at
        stalled = state.since_best >= self.patience
        return ~(state.fresh & (solved | stalled))

    def metrics(self, state: EvalState) -> dict[str, Float[Array, ""]]:
        nan = jnp.asarray(jnp.nan, jnp.float32)
        return {
            "eval/return_mean": jnp.where(state.fresh, state.return_mean, nan),
            "eval/return_std": jnp.where(state.fresh, state.return_std, nan),
            "eval/length_mean": jnp.where(state.fresh, state.length_mean, nan),
        }

    def on_training_end(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> EvalState:
        state: EvalState = ctx.state
        leaves, treedef = jax.tree.flatten(state.best_policy)
        steps_per_iteration: int = ctx.algorithm.steps_per_iteration  # pyright: ignore[reportAttributeAccessIssue]  # an AbstractAlgorithm
        token = host.call(
            "finish",
            self.handle,
            ctx.member,
            state.best_return,
            state.best_iteration * steps_per_iteration,
            state.evaluations,
            *leaves,
            after=state.token,
            batched=True,
            treedef=treedef,
            static=eqx.partition(ctx.policy, eqx.is_array)[1],
            many=bool(members.axes()),
        )
        return eqx.tree_at(lambda s: s.token, state, token)
