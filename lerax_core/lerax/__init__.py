"""Lerax: fully jitted reinforcement learning on JAX with a pluggable callback ecosystem.

`import lerax` is deliberately light (no JAX, no plugins): import what you use from
its subpackages, [`lerax.env`][], [`lerax.policy`][], [`lerax.algorithm`][],
[`lerax.callback`][] and [`lerax.plugin`][]. `lerax.save(policy, path)` and
`lerax.load(path, like=policy)` ([`lerax.serialisation`][]) import JAX when first used.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from lerax.plugin.hookspecs import hookimpl

if TYPE_CHECKING:  # imported lazily below; named here for type checkers
    from lerax.serialisation import load, save

try:
    __version__ = version("lerax")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0"

__all__ = ["__version__", "hookimpl", "load", "save"]


def __getattr__(attribute: str):
    """`lerax.save` and `lerax.load`, imported on first use (they need JAX)."""
    if attribute in ("save", "load"):
        from lerax import serialisation

        return getattr(serialisation, attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
