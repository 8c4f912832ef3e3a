"""Many runs in one `learn`: a batch of keys, hyper-parameter grids, devices.

`learn` with `N` keys trains `N` members in one compiled program: the loop is
`vmap`ped over them and, with several devices (or processes), `shard_map`ped
so that each device runs its share. Float hyper-parameters given as sequences
vary across members. Everything here runs before compiling, so bad input gets
its error first.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float, Key

from lerax import members

Devices = Sequence[Any] | Mesh  # of jax.Device (not usable as a static type)
ModuleT = TypeVar("ModuleT", bound=eqx.Module)


def check_keys(key: Any) -> tuple[Key[Array, "..."], int | None]:
    """A typed key or keys, and the number of members (`None` for one run).

    Accepts typed keys (`jax.random.key(0)`, `jax.random.split(key, 8)`) and
    legacy `uint32` key data (`PRNGKey(0)`, shape `(2,)`; a batch `(N, 2)`).
    """
    if isinstance(key, jax.Array):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.ndim == 0:
                return key, None
            if key.ndim == 1 and key.shape[0] >= 1:
                return key, key.shape[0]
        elif key.dtype == jnp.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key), None
        elif key.dtype == jnp.uint32 and key.ndim == 2 and key.shape[1] == 2:
            if key.shape[0] == 0:
                raise TypeError("key is an empty batch: give at least one key.")
            return jax.random.wrap_key_data(key), key.shape[0]
    described = (
        f"an array of dtype {key.dtype} and shape {key.shape}"
        if isinstance(key, jax.Array)
        else repr(key)
    )
    raise TypeError(
        f"key must be a JAX PRNG key such as jax.random.key(0) for one run, or a "
        f"1-D batch of keys such as jax.random.split(jax.random.key(0), 8) for "
        f"one run per key; got {described}."
    )


def _is_float_field(field: dataclasses.Field) -> bool:
    return field.type in (float, "float")


def _is_sequence(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    if isinstance(value, (jax.Array, np.ndarray)):
        return value.ndim >= 1
    return isinstance(value, Sequence)


def grid_values(value: Any) -> tuple[Any, ...]:
    """The values a hyper-parameter takes across members: one, or a sequence."""
    if _is_sequence(value):
        return tuple(np.asarray(value).reshape(-1).tolist())
    return (value,)


def grid_fields(algorithm: eqx.Module) -> dict[str, tuple[float, ...]]:
    """The algorithm's hyper-parameters given as sequences, with their values.

    Only float hyper-parameters may vary across members: the others change
    array shapes (environments, steps, minibatches, buffer size) or the program
    itself (switches), which a single compiled program cannot vary.
    """
    grid: dict[str, tuple[float, ...]] = {}
    name = type(algorithm).__name__
    for field in dataclasses.fields(algorithm):
        value = getattr(algorithm, field.name, None)
        if not _is_sequence(value):
            continue
        if not _is_float_field(field):
            raise ValueError(
                f"{name}.{field.name} was given several values ({value!r}), but "
                f"it cannot vary across members: it sets array shapes or the "
                f"program itself. Only float hyper-parameters (such as "
                f"learning_rate) take one value per member; train different "
                f"{field.name} values in separate learn calls."
            )
        array = np.asarray(value)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(
                f"{name}.{field.name} must be a float or a 1-D sequence of floats "
                f"(one per member), got shape {array.shape}."
            )
        if not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"{name}.{field.name} must be floats, got {value!r}.")
        grid[field.name] = tuple(float(v) for v in array)
    return grid


def _replace(module: ModuleT, field: str, value: Any) -> ModuleT:
    return eqx.tree_at(lambda m: getattr(m, field), module, value)


def split_grid(
    algorithm: ModuleT, num_members: int | None
) -> tuple[ModuleT, dict[str, Float[Array, " members"]]]:
    """The algorithm with one value in each grid field, and the per-member values.

    Fields of length 1 become that float; the others are returned as arrays
    of length `num_members`, to be `vmap`ped and put back in the loop.
    """
    grid = grid_fields(algorithm)
    name = type(algorithm).__name__
    varied: dict[str, Float[Array, " members"]] = {}
    for field, values in grid.items():
        if len(values) == 1:
            algorithm = _replace(algorithm, field, values[0])
            continue
        if num_members is None:
            raise ValueError(
                f"{name}.{field} has {len(values)} values, one per member, but "
                f"learn was given one key. Pass one key per member, e.g. "
                f"key=jax.random.split(key, {len(values)})."
            )
        if len(values) != num_members:
            raise ValueError(
                f"{name}.{field} has {len(values)} values but learn was given "
                f"{num_members} keys: give one value per key (or a single value)."
            )
        varied[field] = jnp.asarray(values, jnp.float32)
        algorithm = _replace(algorithm, field, values[0])
    return algorithm, varied


def with_values(algorithm: ModuleT, values: dict[str, Array]) -> ModuleT:
    """`algorithm` with `values` in its grid fields (inside the traced loop)."""
    if not values:
        return algorithm
    names = tuple(values)
    return eqx.tree_at(
        lambda a: tuple(getattr(a, n) for n in names),
        algorithm,
        tuple(values[n] for n in names),
    )


def mesh_for(num_members: int, devices: Devices | None) -> Mesh | None:
    """The mesh the members are sharded over, or `None` for one device.

    By default all devices (of every process, under `jax.distributed`) when
    there are several and `num_members` is a multiple of their number.
    """
    if isinstance(devices, Mesh):
        mesh = devices
    elif devices is not None:
        devices = list(devices)
        if not devices or not all(isinstance(d, jax.Device) for d in devices):
            raise TypeError(
                f"devices must be a non-empty list of jax devices (such as "
                f"jax.devices()) or a jax.sharding.Mesh, got {devices!r}."
            )
        here = jax.process_index()
        foreign = [d for d in devices if d.process_index != here]
        if foreign:
            raise ValueError(
                f"devices lists {foreign[0]}, a device of process "
                f"{foreign[0].process_index}, not of this one ({here}): a list "
                f"names this process's devices (jax.local_devices()). To spread "
                f"members over processes, leave devices out (all processes' "
                f"devices are used) or pass a jax.sharding.Mesh."
            )
        mesh = Mesh(np.asarray(devices), (members.DEVICES_AXIS,))
    else:
        everywhere = jax.devices()
        if jax.process_count() > 1:
            if num_members % len(everywhere):
                raise ValueError(
                    f"{num_members} members cannot be shared evenly by the "
                    f"{len(everywhere)} devices of {jax.process_count()} "
                    f"processes: give a multiple of {len(everywhere)} keys."
                )
        elif len(everywhere) == 1 or num_members % len(everywhere):
            return None
        mesh = Mesh(np.asarray(everywhere), (members.DEVICES_AXIS,))
    if num_members % mesh.size:
        raise ValueError(
            f"{num_members} members cannot be shared evenly by {mesh.size} "
            f"devices: give a multiple of {mesh.size} keys, or other devices."
        )
    return None if mesh.size == 1 and devices is None else mesh


def _mesh_axes(mesh: Mesh) -> tuple[str, ...]:
    return tuple(mesh.axis_names)


@functools.cache
def partitionable_philox() -> None:
    """Let XLA partition the Philox generator the loop draws from.

    JAX lowers Philox's 32-bit high multiply to `chlo.mulhi`, which XLA:CPU
    cannot yet convert once the program is partitioned over devices ("Unable
    to convert MHLO to StableHLO"). JAX keeps its own exact lowering (widen to
    64 bits, multiply, shift) for jaxlibs without `chlo.mulhi`; this registers
    it for the CPU, where the two give the same bits. Done once, before the
    first sharded program compiles; JAX versions without it are left alone.
    """
    try:
        from jax._src.interpreters import mlir
        from jax._src.lax import lax as lax_internal

        mlir.register_lowering(
            lax_internal.mulhi_p,
            mlir.lower_fun(lax_internal._mulhi_impl, multiple_results=False),
            platform="cpu",
        )
    except (ImportError, AttributeError):  # pragma: no cover - other JAX versions
        pass


def global_batch(values: Any, mesh: Mesh) -> Any:
    """`values` (identical on every process, leading axis: members) as arrays
    sharded over `mesh`'s devices along the members axis."""
    sharding = NamedSharding(mesh, PartitionSpec(_mesh_axes(mesh)))

    def place(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return x
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        data = x
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = jax.random.key_data(x)
        host = np.asarray(data)
        placed = jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])
        if data is not x:
            placed = jax.random.wrap_key_data(placed, impl=jax.random.key_impl(x))
        return placed

    return jax.tree.map(place, values)


def gather(values: Any) -> Any:
    """Every member's result on this process (from every process)."""
    if jax.process_count() == 1:
        return values
    from jax.experimental import multihost_utils

    dynamic, static = eqx.partition(values, eqx.is_array)
    gathered = multihost_utils.process_allgather(dynamic, tiled=True)
    return eqx.combine(gathered, static)


def members_program(run: Any, mesh: Mesh | None) -> Any:
    """`run(member_args)` over the leading axis of every argument: `vmap`, and
    over `mesh`'s devices with `shard_map` when given. `run`'s non-array
    outputs (activation functions, static fields) are the same for every
    member and come back once."""
    static: list[Any] = []

    def arrays_only(member: Any) -> Any:
        dynamic, rest = eqx.partition(run(member), eqx.is_array)
        static.append(rest)
        return dynamic

    vmapped = jax.vmap(arrays_only, axis_name=members.MEMBERS_AXIS)
    if mesh is None:
        axes: tuple[str, ...] = (members.MEMBERS_AXIS,)
        mapped = vmapped
    else:
        partitionable_philox()
        spec = PartitionSpec(_mesh_axes(mesh))
        axes = (*_mesh_axes(mesh), members.MEMBERS_AXIS)
        mapped = jax.shard_map(
            vmapped, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False
        )

    def program(batch: Any) -> Any:
        with members.bound(axes):
            dynamic = mapped(batch)
        return eqx.combine(dynamic, static[-1])

    return program


def _is_per_member(policy: eqx.Module, env: Any, num_members: int) -> bool:
    """Whether `policy` is one policy per member, stacked on a leading axis.

    It is when every parameter has a leading axis of `num_members` and the
    policy does not act on one observation as it stands, but does per member.
    """
    leaves = jax.tree.leaves(eqx.filter(policy, eqx.is_inexact_array))
    if not leaves or any(x.ndim == 0 or x.shape[0] != num_members for x in leaves):
        return False
    _, observation = jax.eval_shape(lambda k: env.reset(key=k), jax.random.key(0))
    example = jnp.zeros(observation.shape, observation.dtype)
    try:
        eqx.filter_eval_shape(lambda p: p.predict(example), policy)
    except (TypeError, ValueError):
        pass
    else:
        return False
    eqx.filter_eval_shape(eqx.filter_vmap(lambda p: p.predict(example)), policy)
    return True


class MemberBatch(eqx.Module):
    """What differs between members: key, index, grid values, maybe the policy.

    `dynamic` has a leading members axis on every array; `shared_policy` is
    the policy every member starts from (`None` when each has its own, then
    in `dynamic`).
    """

    dynamic: dict[str, Any]
    shared_policy: Any

    @classmethod
    def make(
        cls,
        keys: Key[Array, " members"],
        varied: dict[str, Array],
        policy: eqx.Module,
        env: Any,
        num_members: int,
        mesh: Mesh | None,
    ) -> "MemberBatch":
        dynamic: dict[str, Any] = {
            "key": keys,
            "member": jnp.arange(num_members, dtype=jnp.int32),
            "values": varied,
        }
        shared_policy: Any = policy
        if _is_per_member(policy, env, num_members):
            params, shared_policy = eqx.partition(policy, eqx.is_array)
            dynamic["policy"] = params
        if mesh is not None:
            dynamic = global_batch(dynamic, mesh)
        return cls(dynamic, shared_policy)


@eqx.filter_jit
def run_members(
    algorithm: Any,
    env: Any,
    policy: Any,
    callback: Any,
    total_timesteps: Array,
    batch: dict[str, Any],
    *,
    poll_every: int,
    stop_on_divergence: bool,
    mesh: Mesh | None,
) -> Any:
    """Every member's loop in one program: results stacked on a leading axis."""
    from lerax.algorithm._loop import loop

    def one(member: dict[str, Any]) -> Any:
        start = policy
        if "policy" in member:
            start = eqx.combine(member["policy"], policy)
        return loop(
            with_values(algorithm, member["values"]),
            env,
            start,
            callback,
            total_timesteps,
            member["key"],
            poll_every=poll_every,
            stop_on_divergence=stop_on_divergence,
            member=member["member"],
        )

    return members_program(one, mesh)(batch)
