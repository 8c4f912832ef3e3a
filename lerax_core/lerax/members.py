"""Many runs in one `learn` call: the members axis, as callbacks see it.

`learn` with a batch of keys trains one *member* per key in one compiled
program: `vmap` over the members, and `shard_map` over devices (and processes)
when there are several. Inside the loop each member is an ordinary single run;
a callback that wants to look across members (a logger's aggregate row, a
progress bar) uses the functions here, which reduce over every member, on every
device and process, with collectives. For a single run they reduce over that
one run.

Members that have stopped (early stopping, divergence) still go through the
loop body until the last member stops, on frozen state: reductions take an
`include` flag, normally "this member is running"
([`lerax.host.running`][lerax.host.running]).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

MEMBERS_AXIS = "lerax_members"
"""The `vmap` axis name of the members on one device."""
DEVICES_AXIS = "lerax_devices"
"""The mesh axis name the members are sharded over (devices, processes)."""

_axes: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "lerax_member_axes", default=()
)
_shared_name: list[str] = []  # set by `learn` when processes must agree on names


@contextlib.contextmanager
def bound(axes: tuple[str, ...]) -> Iterator[None]:
    """Trace the loop with the members spread over `axes` (used by `learn`)."""
    token = _axes.set(axes)
    try:
        yield
    finally:
        _axes.reset(token)


def axes() -> tuple[str, ...]:
    """The axis names the members are spread over; `()` for a single run."""
    return _axes.get()


def _reduce(collective, x: Array) -> Array:
    # One axis at a time: the members' vmap axis, then the devices'.
    for name in reversed(axes()):
        x = collective(x, name)
    return x


def _sum(x: Array) -> Array:
    return _reduce(jax.lax.psum, x)


def _max(x: Array) -> Array:
    return _reduce(jax.lax.pmax, x)


def _min(x: Array) -> Array:
    return _reduce(jax.lax.pmin, x)


def count(include: Bool[Array, ""]) -> Int[Array, ""]:
    """How many members have `include` set."""
    return _sum(jnp.asarray(include, jnp.int32))


def any_member(flag: Bool[Array, ""]) -> Bool[Array, ""]:
    """Whether `flag` is set for any member."""
    return count(flag) > 0


def summary(
    values: Float[Array, " n"], include: Bool[Array, ""]
) -> Float[Array, "4 n"]:
    """Mean, standard deviation, minimum and maximum of `values` across members.

    Only members with `include` set, and for each entry only members whose
    value is finite, count (a member with no finished episode this iteration
    has a NaN mean return). An entry no member has a finite value for is NaN.
    """
    keep = include & jnp.isfinite(values)
    n = _sum(keep.astype(values.dtype))
    total = _sum(jnp.where(keep, values, 0.0))
    mean = total / n
    squares = _sum(jnp.where(keep, (values - mean) ** 2, 0.0))
    std = jnp.sqrt(squares / n)
    low = _min(jnp.where(keep, values, jnp.inf))
    high = _max(jnp.where(keep, values, -jnp.inf))
    none = n == 0
    nan = jnp.asarray(jnp.nan, values.dtype)
    return jnp.stack(
        [
            mean,
            jnp.where(none, nan, std),
            jnp.where(none, nan, low),
            jnp.where(none, nan, high),
        ]
    )


def shared(value: Array, include: Bool[Array, ""]) -> Array:
    """`value` as held by the members with `include` set, for every member.

    For a value those members hold equally (a summary computed while they all
    ran), it hands it to members whose copy is stale. NaN (0 for integers) if
    none is included.
    """
    # Every included member holds the same value, so their maximum is exact.
    value = jnp.asarray(value)
    if jnp.issubdtype(value.dtype, jnp.integer):
        lowest, none = jnp.iinfo(value.dtype).min, 0
    else:
        lowest, none = -jnp.inf, jnp.nan
    high = _max(jnp.where(include, value, lowest))
    return jnp.where(any_member(include), high, none).astype(value.dtype)


def agree_on_names() -> None:
    """Under `jax.distributed`, make every process name the next group alike.

    Run names carry a time and a process id, which differ between processes;
    process 0's are broadcast to all (`learn` calls this before training).
    """
    import os
    import time

    import numpy as np
    from jax.experimental import multihost_utils

    mine = np.array([int(time.time()), os.getpid()], np.int32)
    stamp, pid = (int(v) for v in multihost_utils.broadcast_one_to_all(mine))
    _shared_name[:] = [f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(stamp))}-{pid}"]


def shared_name() -> str | None:
    """The date, time and process id that name runs when processes must agree."""
    return _shared_name[0] if _shared_name else None
