"""Log training metrics to pluggable backends, crossing to the host once per iteration."""

import functools
import itertools
import os
import time
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from jaxtyping import Array, Float, Int, Key

from lerax.callback._callback import AbstractCallback
from lerax.callback.context import (
    IterationContext,
    ResetContext,
    StepContext,
    TrainingContext,
)
from lerax.plugin.backend import AbstractLoggingBackend
from lerax.plugin.dispatch import BackendDispatcher

_run_counter = itertools.count()


class EpisodeStats(eqx.Module):
    """Per-environment sums over the episodes that finished during one rollout."""

    returns: Float[Array, ""]
    lengths: Float[Array, ""]
    count: Float[Array, ""]


class EpisodeAverages(eqx.Module):
    """Exponential moving averages of episode return and length across iterations.

    `token` is returned by each host call and passed to the next, so the data
    dependency keeps start, iterations and end in order on the host.
    """

    returns: Float[Array, ""]
    lengths: Float[Array, ""]
    seen: Float[Array, ""]
    token: Int[Array, ""]


def _host_call(function, token: Int[Array, ""], *args: Any) -> Int[Array, ""]:
    """Call `function(token, *args)` on the host; return its new token."""
    return io_callback(function, jax.ShapeDtypeStruct((), jnp.int32), token, *args)


class _HostLogger:
    """The host side of a `LoggingCallback`: names the run and times iterations."""

    def __init__(
        self, dispatcher: BackendDispatcher, name: str | None, close_at_end: bool
    ):
        self.dispatcher = dispatcher
        self.name = name
        self.close_at_end = close_at_end
        self._last: tuple[float, int] | None = None

    def start(
        self, hyperparameters: dict[str, Any], algorithm: str, env: str, token
    ) -> np.ndarray:
        run_name = self.name or "-".join(
            [
                algorithm,
                env,
                time.strftime("%Y%m%d-%H%M%S"),
                f"{os.getpid()}.{next(_run_counter)}",
            ]
        )
        self._last = None
        self.dispatcher.submit(
            "lerax_on_training_start",
            run_name=run_name,
            hyperparameters=hyperparameters,
        )
        return np.int32(token + 1)

    def iteration(
        self, token: np.ndarray, step: np.ndarray, metrics: dict[str, np.ndarray]
    ) -> np.ndarray:
        now, step = time.perf_counter(), int(step)
        values = {name: float(value) for name, value in metrics.items()}
        if self._last is not None and now > self._last[0]:
            speed = (step - self._last[1]) / (now - self._last[0])
            values["time/steps_per_second"] = speed
        self._last = (now, step)
        self.dispatcher.submit("lerax_on_iteration", step=step, metrics=values)
        return np.int32(token + 1)

    def end(self, token: np.ndarray, step: np.ndarray) -> np.ndarray:
        self.dispatcher.submit("lerax_on_training_end", step=int(step))
        if self.close_at_end:
            self.dispatcher.close()
        return np.int32(token + 1)


class LoggingCallback(AbstractCallback):
    """Send per-iteration metrics to one or more logging backends.

    Inside the jit it sums the returns and lengths of episodes as they finish and,
    once per iteration, sends one pytree of metrics to the host:

    - `episode/return`, `episode/length`: exponential moving averages
      (weight `ema_weight` on the newest iteration);
    - `episode/return_mean`, `episode/length_mean`, `episode/count`: the
      episodes that finished during this iteration (NaN means mean of none);
    - `train/<entry>` for every entry of the training log (losses, entropy,
      `train/learning_rate`, ...);
    - `time/iteration` and, from the host clock, `time/steps_per_second`.

    At training start every backend gets a run name (`name`, or algorithm, env,
    time and a unique suffix) and the hyper-parameters of the algorithm, the env
    and the policy. Backends run on a background thread (see
    [`BackendDispatcher`][lerax.plugin.dispatch.BackendDispatcher]); call
    `close()`, or use the callback as a context manager, to flush them.

    `env` and `policy` are accepted for symmetry with `learn`; the run's
    hyper-parameters always come from what is actually trained. With
    `close_at_end=True` the backends are closed when training ends, which is how
    `learn(..., callback="tensorboard")` finishes the runs it creates.
    """

    backends: tuple[AbstractLoggingBackend, ...] = eqx.field(static=True)
    name: str | None = eqx.field(static=True)
    ema_weight: float = eqx.field(static=True)
    close_at_end: bool = eqx.field(static=True)
    host: _HostLogger = eqx.field(static=True)

    def __init__(
        self,
        backends: Sequence[AbstractLoggingBackend] | AbstractLoggingBackend,
        env: Any = None,
        policy: Any = None,
        *,
        name: str | None = None,
        ema_weight: float = 0.1,
        close_at_end: bool = False,
    ):
        del env, policy  # the trained env and policy come through the contexts
        if isinstance(backends, AbstractLoggingBackend):
            backends = [backends]
        self.backends = tuple(backends)
        self.name = name
        self.ema_weight = ema_weight
        self.close_at_end = close_at_end
        self.host = _HostLogger(BackendDispatcher(self.backends), name, close_at_end)

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> EpisodeAverages:
        zero = jnp.zeros(())
        return EpisodeAverages(zero, zero, zero, jnp.zeros((), jnp.int32))

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
    ) -> EpisodeAverages:
        hyperparameters = {
            f"{prefix}/{name}": value
            for prefix, part in (
                ("algorithm", ctx.algorithm),
                ("env", ctx.env),
                ("policy", ctx.policy),
            )
            for name, value in part.hyperparameters().items()
        }
        start = functools.partial(
            self.host.start,
            hyperparameters,
            type(ctx.algorithm).__name__,
            type(ctx.env).__name__,
        )
        return eqx.tree_at(
            lambda s: s.token, ctx.state, _host_call(start, ctx.state.token)
        )

    def on_iteration(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> EpisodeAverages:
        totals = jax.tree.map(jnp.sum, ctx.step_state)
        finished = totals.count > 0
        mean_return = totals.returns / totals.count  # NaN when no episode finished
        mean_length = totals.lengths / totals.count
        averages = ctx.state

        def ema(old, new):
            blended = jnp.where(
                averages.seen > 0,
                (1 - self.ema_weight) * old + self.ema_weight * new,
                new,
            )
            return jnp.where(finished, blended, old)

        averages = EpisodeAverages(
            ema(averages.returns, mean_return),
            ema(averages.lengths, mean_length),
            averages.seen + finished,
            averages.token,
        )
        no_value = jnp.asarray(jnp.nan)
        metrics = {
            "episode/return": jnp.where(averages.seen > 0, averages.returns, no_value),
            "episode/length": jnp.where(averages.seen > 0, averages.lengths, no_value),
            "episode/return_mean": mean_return,
            "episode/length_mean": mean_length,
            "episode/count": totals.count,
            "time/iteration": ctx.iteration,
            **{f"train/{name}": value for name, value in ctx.training_log.items()},
        }
        token = _host_call(self.host.iteration, averages.token, ctx.timestep, metrics)
        return eqx.tree_at(lambda s: s.token, averages, token)

    def on_training_end(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> EpisodeAverages:
        token = _host_call(self.host.end, ctx.state.token, ctx.timestep)
        return eqx.tree_at(lambda s: s.token, ctx.state, token)

    def close(self) -> None:
        """Deliver pending metrics and close every backend. Safe to call twice."""
        self.host.dispatcher.close()

    def __enter__(self) -> "LoggingCallback":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
