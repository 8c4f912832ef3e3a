"""Reach host-side Python objects from jitted code: in order, and without recompiling.

Callbacks that draw or write (a logger, a progress bar) keep their mutable state
in an ordinary Python object on the host. Compiled code must not capture that
object: each new instance would be a new compilation. Instead the object is
registered here and the callback holds only its integer *handle*, a traced array,
so every instance with the same settings shares one compiled loop.

Ordering: a host call runs after every value passed to it is computed, and calls
in a loop body run in iteration order. `call` returns a token; pass it as
`after=` to later calls (through the callback's state) to order them after it.

Under `vmap`, a call with a batched argument runs once per batch element, in
order; one whose arguments are all unbatched runs once. Training loops trace
their body inside `while_running`, so that the elements of a batch that have
already stopped, whose state JAX keeps frozen while the others go on, make no
host calls.

Cost: on CPU, calls go through `jax.experimental.buffer_callback`, which hands
Python views of XLA's own buffers. `io_callback`, `pure_callback` and
`jax.debug.callback` first copy every operand with `device_put`: ~60 us of
Python when idle, but a few hundred microseconds inside a training loop, whose
working set has evicted that code from the CPU caches. Other backends, where
`buffer_callback`'s buffers are not NumPy-readable, use `io_callback`.
"""

import contextlib
import contextvars
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from jax.experimental.buffer_callback import buffer_callback
from jaxtyping import Array, Bool, Int

_objects: dict[int, Any] = {}
_handles = itertools.count()
_running: contextvars.ContextVar[Bool[Array, ""] | None] = contextvars.ContextVar(
    "lerax_host_running", default=None
)


def register(obj: Any) -> Int[Array, ""]:
    """Keep `obj` on the host and return the handle that reaches it from traced code."""
    handle = next(_handles)
    _objects[handle] = obj
    return jnp.asarray(handle, jnp.int32)


def release(handle: Any) -> None:
    """Forget the object under `handle`, so that it can be freed.

    Owners call it when they close (a `LoggingCallback`, a progress bar); a later
    host call on the handle then fails with a clear error instead of reaching a
    closed object. Releasing twice is harmless.
    """
    _objects.pop(int(handle), None)


def lookup(handle: Any) -> Any:
    """The object registered under `handle` (an int or a concrete array)."""
    try:
        return _objects[int(handle)]
    except KeyError:
        raise LookupError(
            f"No host object is registered under handle {int(handle)}: its owner "
            f"was closed (a closed LoggingCallback or progress bar cannot be "
            f"reused). Create a new one for another run."
        ) from None


def new_token() -> Int[Array, ""]:
    """A token that orders nothing, to initialise a callback's state."""
    return jnp.zeros((), jnp.int32)


def _on_host(
    run: Callable[..., Any], result: jax.ShapeDtypeStruct, *operands: Any
) -> Array:
    """Return `run(*operands)`, computed on the host, as one array of type `result`.

    `run` gets NumPy copies of the operands: on CPU the buffers behind them
    belong to XLA and are only valid during the call.
    """
    if not _buffers_reach_numpy():
        return io_callback(
            lambda *args: np.asarray(run(*map(np.asarray, args)), result.dtype),
            result,
            *operands,
        )

    def callback(context: Any, out: tuple[Any], *buffers: Any) -> None:
        del context
        copies = (np.asarray(buffer).copy() for buffer in buffers)
        np.asarray(out[0])[...] = run(*copies)

    send = buffer_callback(
        callback, (result,), has_side_effect=True, vmap_method="sequential"
    )
    (answer,) = send(*operands)
    return answer


def _buffers_reach_numpy() -> bool:
    """Whether `buffer_callback`'s buffers convert to NumPy arrays: on CPU only."""
    return jax.default_backend() == "cpu"


@contextlib.contextmanager
def while_running(running: Bool[Array, ""]) -> Iterator[None]:
    """Host calls traced in this context do nothing on the host unless `running`.

    A training loop traces its body in it, with its own continue condition.
    """
    token = _running.set(running)
    try:
        yield
    finally:
        _running.reset(token)


def call(
    method: str,
    handle: Int[Array, ""],
    *args: Any,
    after: Int[Array, ""] | None = None,
    **static: Any,
) -> Int[Array, ""]:
    """From traced code, run `lookup(handle).method(*args, **static)` on the host.

    `args` are traced values and arrive as NumPy arrays; `static` are Python
    values fixed at trace time (part of the compiled program). `after` is a
    token from an earlier call that this one must follow. Returns this call's
    token.
    """

    def run(
        handle: np.ndarray, after: np.ndarray, running: np.ndarray, *args: np.ndarray
    ) -> np.ndarray:
        if running:
            getattr(lookup(handle), method)(*args, **static)
        return after + 1

    after = new_token() if after is None else after
    running = _running.get()
    running = jnp.asarray(True) if running is None else running
    token_type = jax.ShapeDtypeStruct((), jnp.int32)
    return _on_host(run, token_type, handle, after, running, *args)


def ask(question: Callable[[], Any], dtype: Any) -> Array:
    """From traced code, return `question()`, a scalar of `dtype` computed on the host.

    For polls that need no operands, such as whether Ctrl-C was pressed.
    """
    return _on_host(question, jax.ShapeDtypeStruct((), dtype))
