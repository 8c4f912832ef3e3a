"""Multilayer perceptrons sized from spaces, and a fast way to run them on batches."""

from __future__ import annotations

import math
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from lerax.env.spaces import AbstractSpace, Discrete


def orthogonal_mlp(
    in_size: int,
    out_size: int | Literal["scalar"],
    width: int,
    depth: int,
    out_scale: float,
    *,
    activation=jnp.tanh,
    key,
) -> eqx.nn.MLP:
    """An MLP with orthogonal weights and zero biases, the usual initialisation
    for policy-gradient and Q networks."""
    mlp = eqx.nn.MLP(in_size, out_size, width, depth, activation=activation, key=key)
    keys = jax.random.split(key, len(mlp.layers))
    init = jax.nn.initializers.orthogonal
    layers = []
    for i, (layer, k) in enumerate(zip(mlp.layers, keys, strict=True)):
        scale = out_scale if i == len(mlp.layers) - 1 else math.sqrt(2)
        weight = init(scale)(k, layer.weight.shape)
        layer = eqx.tree_at(lambda lin: lin.weight, layer, weight)
        layer = eqx.tree_at(lambda lin: lin.bias, layer, jnp.zeros_like(layer.bias))
        layers.append(layer)
    return eqx.tree_at(lambda m: m.layers, mlp, tuple(layers))


def _elementwise(fn, x: Array) -> Array:
    """Apply a scalar activation to every entry of a 2-D array (as the MLP does)."""
    return jax.vmap(jax.vmap(fn))(x)


@jax.custom_vjp
def _linear_on_columns(weight: Array, x: Array) -> Array:
    """`weight @ x`, differentiated with a materialised `weight.T`.

    The gradient `weight.T @ dy` contracts the leading axis of both operands,
    which XLA:CPU runs on a slow generic kernel; multiplying by an explicit
    transposed copy of the (small) weight instead keeps it on the fast one.
    """
    return weight @ x


def _linear_on_columns_fwd(weight, x):
    return weight @ x, (weight, x)


def _linear_on_columns_bwd(residuals, dy):
    weight, x = residuals
    weight_t = jax.lax.optimization_barrier(weight.T)  # a real transposed copy
    return dy @ x.T, weight_t @ dy


_linear_on_columns.defvjp(_linear_on_columns_fwd, _linear_on_columns_bwd)


def mlp_on_columns(mlp: eqx.nn.MLP, x: Float[Array, "in batch"]) -> Array:
    """`mlp` applied to every column of `x`: `(out_size, batch)` (`(batch,)` for a
    scalar output).

    The same arithmetic as `jax.vmap(mlp, in_axes=1)`, written as one matrix
    product per layer on feature-major activations. `vmap` lays batches out
    sample-major, which costs XLA:CPU transposes and slower weight-gradient
    products; this layout makes the PPO loss and its gradient up to ~25 %
    cheaper.
    """
    for i, layer in enumerate(mlp.layers):
        x = _linear_on_columns(layer.weight, x)
        if layer.bias is not None:
            x = x + layer.bias[:, None]
        if i < len(mlp.layers) - 1:
            x = _elementwise(mlp.activation, x)
    x = _elementwise(mlp.final_activation, x)
    return x[0] if mlp.out_size == "scalar" else x


def discrete_actions(space: AbstractSpace, policy: str) -> int:
    if isinstance(space, Discrete):
        return space.n
    raise TypeError(
        f"{policy} supports Discrete action spaces, got {type(space).__name__}; "
        f"a head for Box actions is not built yet."
    )
