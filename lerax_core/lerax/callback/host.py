"""Reach host-side Python objects from jitted code: in order, and without recompiling.

Callbacks that draw or write (a logger, a progress bar) keep their mutable state
in an ordinary Python object on the host. Compiled code must not capture that
object: each new instance would be a new compilation. Instead the object is
registered here and the callback holds only its integer *handle*, a traced array,
so every instance with the same settings shares one compiled loop.

Ordering: a host call runs after every value passed to it is computed, and calls
in a loop body run in iteration order. `call_with_token` returns a token; pass it
as `after=` to later calls (through the callback's state) to order them after it.
Returning a value makes a call slower, so only the first call of a chain does.
"""

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from jaxtyping import Array, Int

_objects: dict[int, Any] = {}
_handles = itertools.count()


def register(obj: Any) -> Int[Array, ""]:
    """Keep `obj` on the host and return the handle that reaches it from traced code."""
    handle = next(_handles)
    _objects[handle] = obj
    return jnp.asarray(handle, jnp.int32)


def lookup(handle: Any) -> Any:
    """The object registered under `handle` (an int or a concrete array)."""
    return _objects[int(handle)]


def new_token() -> Int[Array, ""]:
    """A token that orders nothing, to initialise a callback's state."""
    return jnp.zeros((), jnp.int32)


def _on_host(method: str, static: dict[str, Any]):
    def run(handle, after, *args):
        del after  # only there to order this call after the one that made it
        getattr(lookup(handle), method)(*args, **static)

    return run


def call(
    method: str,
    handle: Int[Array, ""],
    *args: Any,
    after: Int[Array, ""] | None = None,
    **static: Any,
) -> None:
    """From traced code, run `lookup(handle).method(*args, **static)` on the host.

    `args` are traced values and arrive as NumPy arrays; `static` are Python
    values fixed at trace time (part of the compiled program). `after` is a
    token from `call_with_token` that this call must follow.
    """
    after = new_token() if after is None else after
    io_callback(_on_host(method, static), None, handle, after, *args)


def call_with_token(
    method: str,
    handle: Int[Array, ""],
    *args: Any,
    after: Int[Array, ""] | None = None,
    **static: Any,
) -> Int[Array, ""]:
    """Like `call`, and return a token that later calls can be ordered `after`."""
    after = new_token() if after is None else after
    run = _on_host(method, static)

    def run_and_return(handle, after, *args):
        run(handle, after, *args)
        return np.int32(after + 1)

    result = jax.ShapeDtypeStruct((), jnp.int32)
    return io_callback(run_and_return, result, handle, after, *args)
