"""The host side of a `LoggingCallback`, reached from compiled code through a handle.

Compiled training code refers to a logger only by an integer handle passed as a
traced argument, never by the Python object. Loggers with the same settings
therefore share one compilation: `learn(..., callback="tensorboard")` called
twice compiles once, although each call makes new backends.
"""

import itertools
import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from jaxtyping import Array, Int

from lerax.plugin.backend import AbstractLoggingBackend
from lerax.plugin.dispatch import BackendDispatcher

_loggers: dict[int, "HostLogger"] = {}
_handles = itertools.count()
_runs = itertools.count()


class HostLogger:
    """Names runs, times iterations, and hands events to a `BackendDispatcher`.

    Each method takes and returns a sequencing token: the compiled loop threads
    it from one call into the next, so the host sees events in order.
    """

    def __init__(
        self,
        backends: Sequence[AbstractLoggingBackend],
        name: str | None,
        close_at_end: bool,
    ):
        self.dispatcher = BackendDispatcher(backends)
        self.name = name
        self.close_at_end = close_at_end
        self._last: tuple[float, int] | None = None
        self.handle = next(_handles)
        _loggers[self.handle] = self

    def start(
        self,
        token: np.ndarray,
        *,
        hyperparameters: dict[str, Any],
        algorithm: str,
        env: str,
    ) -> np.ndarray:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_name = self.name or f"{algorithm}-{env}-{stamp}-{os.getpid()}.{next(_runs)}"
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
            values["time/steps_per_second"] = (step - self._last[1]) / (
                now - self._last[0]
            )
        self._last = (now, step)
        self.dispatcher.submit("lerax_on_iteration", step=step, metrics=values)
        return np.int32(token + 1)

    def end(self, token: np.ndarray, step: np.ndarray) -> np.ndarray:
        self.dispatcher.submit("lerax_on_training_end", step=int(step))
        if self.close_at_end:
            self.dispatcher.close()
        return np.int32(token + 1)


def get_host_logger(handle: int) -> HostLogger:
    """The logger behind `handle`."""
    return _loggers[int(handle)]


def host_call(
    method: str,
    handle: Int[Array, ""],
    token: Int[Array, ""],
    *args: Any,
    **static: Any,
) -> Int[Array, ""]:
    """From traced code, call `method` of the logger `handle`; return the new token.

    `args` are traced values (they arrive as NumPy arrays); `static` are Python
    values fixed at trace time, such as the hyper-parameters.
    """

    def call(handle, token, *args):
        return getattr(get_host_logger(handle), method)(token, *args, **static)

    result = jax.ShapeDtypeStruct((), jnp.int32)
    return io_callback(call, result, handle, token, *args)
