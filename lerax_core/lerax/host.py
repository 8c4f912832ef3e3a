"""Reach host-side Python objects from jitted code: in order, and without recompiling.

Callbacks that draw or write (a logger, a progress bar) keep their mutable state
in an ordinary Python object on the host. Compiled code must not capture that
object: each new instance would be a new compilation. Instead the object is
registered here and the callback holds only its integer *handle*, a traced array,
so every instance with the same settings shares one compiled loop.

Ordering: a host call runs after every value passed to it is computed, and calls
in a loop body run in iteration order. `call` returns a token; pass it as
`after=` to later calls (through the callback's state) to order them after it.

Under `vmap` (many runs in one `learn`, see [`lerax.members`][]) a call crosses
to the host once for the whole batch, never once per element: the method then
runs once per batch element, in order, or, for a `call(..., batched=True)`,
once with every operand stacked on a leading axis. Training loops trace their
body inside `while_running`, so that the elements of a batch that have already
stopped, whose state JAX keeps frozen while the others go on, make no host
calls (a batched method receives the flags as `running=`).

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
    belong to XLA and are only valid during the call. Under `vmap` it is called
    once for the whole batch: batched operands arrive with their batch axes in
    front, unbatched ones with axes of size 1 there (JAX's `expand_dims`), and
    it must return an array of the result's shape with those batch axes.
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
        target = np.asarray(out[0])
        target[...] = np.broadcast_to(run(*copies), target.shape)

    send = buffer_callback(
        callback, (result,), has_side_effect=True, vmap_method="expand_dims"
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


def running() -> Bool[Array, ""]:
    """From traced code: whether this run is still training (see `while_running`).

    `True` outside a training loop's body.
    """
    flag = _running.get()
    return jnp.asarray(True) if flag is None else flag


def _batch_axes(marker: np.ndarray, arrays: tuple[np.ndarray, ...]) -> tuple[int, ...]:
    """The shape of the batch axes in front of `arrays` (`()` outside `vmap`).

    `marker` is a scalar operand that no `vmap` batches: it arrives with one
    axis of size 1 per enclosing `vmap`.
    """
    depth = marker.ndim
    return np.broadcast_shapes(*(a.shape[:depth] for a in arrays)) if depth else ()


def call(
    method: str,
    handle: Int[Array, ""],
    *args: Any,
    after: Int[Array, ""] | None = None,
    batched: bool = False,
    **static: Any,
) -> Int[Array, ""]:
    """From traced code, run `lookup(handle).method(*args, **static)` on the host.

    `args` are traced values and arrive as NumPy arrays; `static` are Python
    values fixed at trace time (part of the compiled program). `after` is a
    token from an earlier call that this one must follow. Returns this call's
    token.

    Under `vmap` the whole batch crosses at once and the method runs once per
    running element. With `batched=True` it runs once per crossing instead,
    with every argument stacked on one leading axis (of length 1 outside
    `vmap`) and the keyword `running`, a boolean array saying which elements
    are running; it is not called when none is.
    """

    def run(
        marker: np.ndarray,
        handle: np.ndarray,
        after: np.ndarray,
        running: np.ndarray,
        *args: np.ndarray,
    ) -> np.ndarray:
        batch = _batch_axes(marker, (handle, after, running, *args))
        depth = len(batch)
        size = int(np.prod(batch, dtype=np.int64))

        def flat(a: np.ndarray) -> np.ndarray:  # one leading axis of the batch
            return np.broadcast_to(a, batch + a.shape[depth:]).reshape(
                (size, *a.shape[depth:])
            )

        handle, running = flat(handle), flat(running).astype(bool)
        args = tuple(flat(a) for a in args)
        target = lookup(handle[0]) if running.any() else None
        if batched and target is not None:
            getattr(target, method)(*args, running=running, **static)
        elif target is not None:
            for i in np.flatnonzero(running):
                getattr(target, method)(*(a[i] for a in args), **static)
        return after + 1

    after = new_token() if after is None else after
    marker = jnp.zeros((), jnp.int8)
    token_type = jax.ShapeDtypeStruct((), jnp.int32)
    return _on_host(run, token_type, marker, handle, after, running(), *args)


def ask(question: Callable[[], Any], dtype: Any) -> Array:
    """From traced code, return `question()`, a scalar of `dtype` computed on the host.

    For polls that need no operands, such as whether Ctrl-C was pressed.
    """
    return _on_host(question, jax.ShapeDtypeStruct((), dtype))
