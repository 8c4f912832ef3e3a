"""Collect the plain settings of an Equinox module as a flat dictionary."""

from __future__ import annotations

import dataclasses
from typing import Any

Scalar = bool | int | float | str


def hyperparameters(module: Any) -> dict[str, Scalar]:
    """Return the dataclass fields of `module` whose values are plain scalars.

    Arrays and sub-modules (weights, spaces) are skipped: what remains is what a
    person would write in a config file, which is what loggers want.
    """
    values: dict[str, Scalar] = {"class": type(module).__name__}
    for field in dataclasses.fields(module):
        value = getattr(module, field.name, None)
        if isinstance(value, Scalar):
            values[field.name] = value
        elif isinstance(value, tuple) and all(isinstance(v, Scalar) for v in value):
            values[field.name] = str(value)
    return values
