"""Observation and action spaces: what an environment accepts and returns."""

from __future__ import annotations

from abc import abstractmethod

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import random as jr
from jaxtyping import Array, ArrayLike, Key


class AbstractSpace(eqx.Module):
    """A set of valid observations or actions."""

    @abstractmethod
    def sample(self, *, key: Key[Array, ""]) -> Array:
        """Draw a uniformly random element of the space."""

    @abstractmethod
    def contains(self, x: Array) -> Array:
        """Whether `x` is an element of the space (a boolean scalar)."""

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The shape of one element."""


class Discrete(AbstractSpace):
    """The integers `0, ..., n - 1`."""

    n: int = eqx.field(static=True)

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"Discrete needs n >= 1, got {n}.")
        self.n = int(n)

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, *, key: Key[Array, ""]) -> Array:
        return jr.randint(key, (), 0, self.n)

    def contains(self, x: Array) -> Array:
        x = jnp.asarray(x)
        if x.shape != ():
            return jnp.asarray(False)
        return (x >= 0) & (x < self.n) & (x == jnp.floor(x))


UNBOUNDED = 1e30
"""Bounds at least this large are treated as no bound when sampling."""


class Box(AbstractSpace):
    """Real arrays bounded element-wise by `low` and `high` (bounds may be infinite).

    Bounds are kept as static tuples so that a space is hashable, compares by value
    and never becomes a leaf that training would differentiate.
    """

    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)
    box_shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, low: ArrayLike, high: ArrayLike):
        low_arr, high_arr = np.asarray(low, np.float64), np.asarray(high, np.float64)
        if low_arr.shape != high_arr.shape:
            raise ValueError(
                f"Box bounds differ in shape: low {low_arr.shape}, "
                f"high {high_arr.shape}."
            )
        self.low = tuple(low_arr.ravel().tolist())
        self.high = tuple(high_arr.ravel().tolist())
        self.box_shape = low_arr.shape

    @property
    def shape(self) -> tuple[int, ...]:
        return self.box_shape

    def _bounds(self) -> tuple[Array, Array]:
        return (
            jnp.asarray(self.low, jnp.float32).reshape(self.shape),
            jnp.asarray(self.high, jnp.float32).reshape(self.shape),
        )

    def sample(self, *, key: Key[Array, ""]) -> Array:
        """Uniform within the bounds; in `[-1, 1]` along unbounded directions.

        Bounds beyond `UNBOUNDED` (such as `±finfo(float32).max`, a common way
        to write "no bound") count as unbounded, since `high - low` would
        overflow.
        """
        low, high = self._bounds()
        low = jnp.where(jnp.abs(low) < UNBOUNDED, low, -1.0)
        high = jnp.where(jnp.abs(high) < UNBOUNDED, high, 1.0)
        return jr.uniform(key, self.shape, minval=low, maxval=high)

    def contains(self, x: Array) -> Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        low, high = self._bounds()
        return jnp.all((x >= low) & (x <= high))
