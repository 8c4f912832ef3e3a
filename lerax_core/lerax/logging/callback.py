"""Log training metrics to pluggable backends, crossing to the host once per iteration."""

import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, Key

from lerax import host, members
from lerax._hyperparameters import hyperparameters
from lerax.callback._callback import AbstractCallback
from lerax.callback.context import (
    IterationContext,
    ResetContext,
    StepContext,
    StopReason,
    TrainingContext,
)
from lerax.logging.host_logger import HostLogger
from lerax.logging.names import DEPRECATED_METRICS
from lerax.plugin.hookspecs import AbstractLoggingBackend


class EpisodeStats(eqx.Module):
    """Per-environment sums over the episodes that finished during one rollout."""

    returns: Float[Array, ""]
    lengths: Float[Array, ""]
    count: Float[Array, ""]


class LoggingState(eqx.Module):
    """What a `LoggingCallback` carries across iterations.

    The exponential moving averages of episode return and length, and the
    metrics of the last iteration, which are sent to the host during the next
    one (or at training end), with, when `learn` trains many members, their
    mean, standard deviation, minimum and maximum across members. `token`
    comes from the host call at training start; later host calls are ordered
    after it (see [`lerax.host`][]).
    """

    returns: Float[Array, ""]
    lengths: Float[Array, ""]
    seen: Float[Array, ""]
    token: Int[Array, ""]
    pending: Float[Array, " metrics"]
    pending_step: Int[Array, ""]  # 0 until an iteration has finished
    pending_summary: Float[Array, "..."]  # across members: (4, metrics); () alone
    pending_count: Int[Array, ""]  # how many members the summary is over


def _metric_names(training_log: dict) -> tuple[str, ...]:
    """The names of the metrics sent each iteration, in the order they are packed.

    Training-log entries are sorted: the log's dict comes out of the training
    loop's carry with its keys sorted, whatever order it went in.
    """
    return (
        "episode/return",
        "episode/length",
        "episode/return_ema",
        "episode/length_ema",
        "episode/count",
        *DEPRECATED_METRICS,
        "time/iteration",
        *(f"train/{name}" for name in sorted(training_log)),
    )


def _group_reason(reason: Int[Array, ""]) -> Int[Array, ""]:
    """Why a group of members ended, for its aggregate run: interrupted if any
    member was, else the members' common reason, else stopped (each member's
    own run records its own)."""
    if not members.axes():
        return reason
    interrupted = members.any_member(reason == StopReason.INTERRUPTED)
    common = members.shared(reason, jnp.asarray(True))
    alike = members.count(reason != common) == 0
    group = jnp.where(alike, common, StopReason.STOPPED)
    return jnp.where(interrupted, StopReason.INTERRUPTED, group).astype(jnp.int32)


MAX_RUN_NAME = 128
"""Longest run name `LoggingCallback` accepts."""


class LoggingCallback(AbstractCallback):
    """Send per-iteration metrics to one or more logging backends.

    Inside the jit it sums the returns and lengths of episodes as they finish and,
    once per iteration, sends one packed array of metrics to the host. Each
    iteration's metrics travel during the next iteration (the last ones at
    training end), so the host call runs alongside the rollout rather than
    holding up the loop; they reach the backends one iteration later. The
    metrics:

    - `episode/return`, `episode/length`, `episode/count`: the mean return and
      length, and the number, of the episodes that finished during this
      iteration (NaN: none did);
    - `episode/return_ema`, `episode/length_ema`: exponential moving averages
      of those means (weight `ema_weight` on the newest iteration), the
      smoothed curve to watch;
    - `episode/return_mean`, `episode/length_mean`: deprecated, the old names
      of `episode/return` and `episode/length`, still sent for one release
      ([`DEPRECATED_METRICS`][lerax.logging.DEPRECATED_METRICS]);
    - `train/<entry>` for every entry of the training log (losses, entropy,
      `train/learning_rate`, ...);
    - `time/iteration` and, from the host clock, `time/steps_per_second`
      (since the previous row sent, or for the first since training started).
    - whatever other callbacks report through their `metrics` hook (such as
      an [`EvalCallback`][lerax.callback.EvalCallback]'s `eval/return_mean`),
      in the same row, and only in rows where the value is not NaN (in an
      aggregate row, the mean over the members that reported one).

    At training start every backend gets a run name (`name`, or algorithm, env,
    time and a unique suffix) and the hyper-parameters of the algorithm, the env
    and the policy, plus `run/total_timesteps`. Backends run on a background thread (see
    [`BackendDispatcher`][lerax.logging.BackendDispatcher]); call
    `close()`, or use the callback as a context manager, to flush them.

    With `log_every=k`, backends get every k-th iteration and the last one (as
    Lightning's `log_every_n_steps`): the moving averages still take in every
    iteration, and backends that cost much per row (W&B) slow training k times
    less.

    `env` and `policy` are accepted for symmetry with `learn`; the run's
    hyper-parameters always come from what is actually trained. With
    `close_at_end=True` the backends are closed when training ends, which is how
    `learn(..., callback="tensorboard")` finishes the runs it creates.
    """

    handle: Int[Array, ""]
    ema_weight: float = eqx.field(static=True)

    def __init__(
        self,
        backends: Sequence[AbstractLoggingBackend] | AbstractLoggingBackend,
        env: Any = None,
        policy: Any = None,
        *,
        name: str | None = None,
        ema_weight: float = 0.1,
        close_at_end: bool = False,
        log_every: int = 1,
    ):
        del env, policy  # the trained env and policy come through the contexts
        if isinstance(backends, AbstractLoggingBackend):
            backends = [backends]
        if isinstance(backends, (str, bytes)) or not isinstance(backends, Sequence):
            raise TypeError(
                f"backends must be a logging backend instance or a list of them, "
                f"such as ConsoleBackend(); got {backends!r}. For a plugin by "
                f"name use make({backends!r}) or learn(..., callback=...)."
            )
        for backend in backends:
            if isinstance(backend, type):
                raise TypeError(
                    f"got the class {backend.__name__}, not an instance: write "
                    f"{backend.__name__}() in the backends list."
                )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}.")
        if name is not None and not 0 < len(name) <= MAX_RUN_NAME:
            raise ValueError(
                f"name must be 1 to {MAX_RUN_NAME} characters, got {len(name)}: "
                f"backends use it in file and run names."
            )
        if isinstance(ema_weight, bool) or not isinstance(ema_weight, (int, float)):
            raise TypeError(f"ema_weight must be a float, got {ema_weight!r}.")
        if not 0 < ema_weight <= 1:  # NaN fails too
            raise ValueError(
                f"ema_weight must be in (0, 1] (the weight of each new mean in "
                f"the episode-return average), got {ema_weight!r}."
            )
        if isinstance(log_every, bool) or not isinstance(log_every, int):
            raise TypeError(f"log_every must be an int, got {log_every!r}.")
        if log_every < 1:
            raise ValueError(
                f"log_every must be >= 1 (1 logs every iteration), got {log_every}."
            )
        self.handle = HostLogger(tuple(backends), name, close_at_end, log_every).handle
        self.ema_weight = ema_weight

    @property
    def host_logger(self) -> HostLogger:
        """The host-side logger (run naming, timing, the backend dispatcher)."""
        return host.lookup(self.handle)

    @property
    def backends(self) -> tuple[AbstractLoggingBackend, ...]:
        """The backends metrics go to."""
        return self.host_logger.dispatcher.backends

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> LoggingState:
        zero = jnp.zeros(())
        pending = jnp.zeros(len(_metric_names(ctx.training_log)), jnp.float32)
        return LoggingState(
            zero,
            zero,
            zero,
            host.new_token(),
            pending,
            jnp.zeros((), jnp.int32),
            jnp.zeros((4, pending.size) if members.axes() else (), jnp.float32),
            jnp.zeros((), jnp.int32),
        )

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> EpisodeStats:
        zero = jnp.zeros(())
        return EpisodeStats(zero, zero, zero)

    def on_step(self, ctx: StepContext, *, key: Key[Array, ""]) -> EpisodeStats:
        done = ctx.done.astype(jnp.float32)
        stats = ctx.state
        return EpisodeStats(
            stats.returns + done * ctx.episode_return,
            stats.lengths + done * ctx.episode_length,
            stats.count + done,
        )

    def on_training_start(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> LoggingState:
        settings = {
            f"{prefix}/{name}": value
            for prefix, part in (
                ("algorithm", ctx.algorithm),
                ("env", ctx.env),
                ("policy", ctx.policy),
            )
            for name, value in hyperparameters(part).items()
        }
        # Hyper-parameters that vary across members are traced values here.
        varied = {
            f"algorithm/{field.name}": value
            for field in dataclasses.fields(ctx.algorithm)
            if isinstance(value := getattr(ctx.algorithm, field.name), jax.Array)
            and value.ndim == 0
        }
        key_data = jax.random.key_data(ctx.locals["key"]).reshape(-1)
        token = host.call(
            "start",
            self.handle,
            ctx.member,
            ctx.timestep,
            ctx.total_timesteps,
            jnp.stack([jnp.asarray(v, jnp.float32) for v in varied.values()])
            if varied
            else jnp.zeros(0, jnp.float32),
            key_data,
            members.count(jnp.asarray(True)),
            after=ctx.state.token,
            batched=True,
            hyperparameters=settings,
            varied=tuple(varied),
            algorithm=type(ctx.algorithm).__name__,
            env=type(ctx.env).__name__,
            many=bool(members.axes()),
        )
        return eqx.tree_at(lambda s: s.token, ctx.state, token)

    def on_iteration(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> LoggingState:
        # The previous iteration's metrics go to the host first: they depend only
        # on the carried state, so XLA runs this call alongside the rollout
        # instead of at the end of the iteration, where it would hold up the loop.
        self._send_pending(ctx.state, ctx.training_log, ctx.reported, ctx.member)
        totals = jax.tree.map(jnp.sum, ctx.step_state)
        finished = totals.count > 0
        mean_return = totals.returns / totals.count  # NaN when no episode finished
        mean_length = totals.lengths / totals.count
        state = ctx.state

        def ema(old, new):
            blended = jnp.where(
                state.seen > 0,
                (1 - self.ema_weight) * old + self.ema_weight * new,
                new,
            )
            return jnp.where(finished, blended, old)

        returns = ema(state.returns, mean_return)
        lengths = ema(state.lengths, mean_length)
        seen = state.seen + finished
        no_value = jnp.asarray(jnp.nan)
        metrics = {
            "episode/return": mean_return,
            "episode/length": mean_length,
            "episode/return_ema": jnp.where(seen > 0, returns, no_value),
            "episode/length_ema": jnp.where(seen > 0, lengths, no_value),
            "episode/count": totals.count,
            "time/iteration": ctx.iteration,
            **{f"train/{name}": value for name, value in ctx.training_log.items()},
        }
        metrics |= {old: metrics[new] for old, new in DEPRECATED_METRICS.items()}
        # One array, in the order the host unpacks, in the state until the next
        # iteration sends it.
        names = _metric_names(ctx.training_log)
        values = jnp.stack([jnp.asarray(metrics[name], jnp.float32) for name in names])
        summary, count = state.pending_summary, state.pending_count
        if members.axes():  # computed now, while every member of this iteration runs
            summary = members.summary(values, host.running())
            count = members.count(host.running())
        return LoggingState(
            returns,
            lengths,
            seen,
            state.token,
            values,
            jnp.asarray(ctx.timestep, jnp.int32),
            summary,
            count,
        )

    def _send_pending(
        self,
        state: LoggingState,
        training_log: dict,
        reported: dict[str, Float[Array, ""]],
        member: Int[Array, ""],
        *,
        last: bool = False,
    ) -> Int[Array, ""]:
        """Send the metrics of the last finished iteration, with what the
        callbacks' `metrics` reported for it (`reported`, NaN ones left out on
        the host); the host skips them if no iteration has finished yet. That
        flag travels with them rather than as a `lax.cond` around the call,
        which under `vmap` would run both branches. Returns the call's token.

        With many members, the reported metrics' summary across members joins
        the pending one here: callbacks report after `on_iteration`, so it
        cannot be made with the rest, but the members that ran the pending
        iteration are those whose pending step is the summary's.
        """
        extra = tuple(sorted(reported))
        extra_values = jnp.stack([reported[name] for name in extra]) if extra else None
        values = state.pending
        if extra_values is not None:
            values = jnp.concatenate([values, extra_values])
        has_values = state.pending_step > 0
        summary, summary_step, running = state.pending_summary, state.pending_step, 0
        if members.axes():
            # The summary of the newest pending iteration, which the members
            # that ran it hold (a member that stopped earlier holds an older one).
            holders = host.running() & has_values
            if last:
                newest = members.shared(state.pending_step, has_values)
                holders = has_values & (state.pending_step == newest)
            summary = members.shared(summary, holders)
            summary_step = members.shared(state.pending_step, holders)
            running = members.shared(state.pending_count, holders)
            if extra_values is not None:
                ran = has_values & (state.pending_step == summary_step)
                extra_summary = members.summary(extra_values, ran)
                summary = jnp.concatenate([summary, extra_summary], axis=1)
        return host.call(
            "iteration",
            self.handle,
            member,
            state.pending_step,
            values,
            has_values,
            summary,
            jnp.asarray(summary_step, jnp.int32),
            jnp.asarray(running, jnp.int32),
            after=state.token,
            batched=True,
            names=_metric_names(training_log) + extra,
            optional=extra,
            last=last,
        )

    def on_training_end(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> LoggingState:
        after_last = self._send_pending(
            ctx.state, ctx.training_log, ctx.reported, ctx.member, last=True
        )
        host.call(
            "end",
            self.handle,
            ctx.member,
            ctx.timestep,
            ctx.stop_reason,
            members.shared(ctx.timestep, jnp.asarray(True)),
            _group_reason(ctx.stop_reason),
            after=after_last,
            batched=True,
        )
        return ctx.state

    def close(self) -> None:
        """Deliver pending metrics and close every backend; the callback cannot be
        used for training after this. Safe to call twice."""
        try:
            logger = self.host_logger
        except LookupError:  # closed already
            return
        logger.close()

    def __enter__(self) -> "LoggingCallback":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
