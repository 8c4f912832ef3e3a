"""Reach host-side Python objects from jitted code: in order, and without recompiling.

Callbacks that draw or write (a logger, a progress bar) keep their mutable state
in an ordinary Python object on the host. Compiled code must not capture that
object: each new instance would be a new compilation. Instead the object is
registered here and the callback holds only its integer *handle*, a traced array,
so every instance with the same settings shares one compiled loop.

Each `call` takes and returns a sequencing *token*; a callback threads the token
through its state from one call into the next, and that data dependency keeps
its host calls in program order.
"""

import itertools
from typing import Any

import jax
import jax.numpy as jnp
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
    """The first token of a chain of calls."""
    return jnp.zeros((), jnp.int32)


def call(
    method: str,
    handle: Int[Array, ""],
    token: Int[Array, ""],
    *args: Any,
    **static: Any,
) -> Int[Array, ""]:
    """From traced code, run `lookup(handle).method(*args, **static)` on the host.

    `args` are traced values and arrive as NumPy arrays; `static` are Python
    values fixed at trace time (they are part of the compiled program). Returns
    the next token.
    """

    def on_host(handle, token, *args):
        lookup(handle).__getattribute__(method)(*args, **static)
        return token + 1

    result = jax.ShapeDtypeStruct((), jnp.int32)
    return io_callback(on_host, result, handle, token, *args)
