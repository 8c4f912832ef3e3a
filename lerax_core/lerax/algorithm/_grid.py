"""A full grid of hyper-parameter values times seeds, as one batch of members."""

import itertools
from collections.abc import Sequence
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Key

from lerax.algorithm._members import grid_fields

AlgorithmT = TypeVar("AlgorithmT", bound=eqx.Module)


def grid(
    algorithm: AlgorithmT,
    key: Key[Array, ""],
    *,
    seeds: int = 1,
    **values: Sequence[float],
) -> tuple[AlgorithmT, Key[Array, " members"]]:
    """Every combination of `values`, each trained with `seeds` keys.

    Returns the algorithm with one value per member in each named field and
    the members' keys, ready for `algorithm.learn(env, policy, steps,
    key=keys)`:

    ```python
    algo, keys = grid(PPO(), jax.random.key(0), seeds=4,
                      learning_rate=[1e-3, 3e-4], gamma=[0.99, 0.999])
    policies = algo.learn(env, policy, 2**17, key=keys)  # 16 members
    ```

    Members come value-major: the first `seeds` members share the first
    combination (in the order of the keyword arguments, the last varying
    fastest). Member `i` uses seed `i % seeds`: the same keys repeat for
    every combination, so combinations are compared on equal seeds.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}.")
    if not values:
        raise TypeError(
            "grid needs at least one hyper-parameter and its values, e.g. "
            "grid(PPO(), key, seeds=4, learning_rate=[1e-3, 3e-4])."
        )
    for name, options in values.items():
        if not hasattr(algorithm, name):
            raise TypeError(
                f"{type(algorithm).__name__} has no hyper-parameter {name!r}."
            )
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
            raise TypeError(f"{name} must be a sequence of values, got {options!r}.")
    combinations = list(itertools.product(*values.values()))
    columns = {
        name: [combo[i] for combo in combinations for _ in range(seeds)]
        for i, name in enumerate(values)
    }
    varied = eqx.tree_at(
        lambda a: tuple(getattr(a, n) for n in columns),
        algorithm,
        tuple(columns.values()),
        is_leaf=lambda x: x is None,
    )
    grid_fields(varied)  # only float hyper-parameters may vary: say so now
    seed_keys = jax.random.split(key, seeds)
    return varied, seed_keys[jnp.tile(jnp.arange(seeds), len(combinations))]
