"""Save a policy to one file and load it back, for deployment or later training.

`lerax.save(policy, path)` and `lerax.load(path, like=policy)` (also importable
from here). The file is a one-line JSON header (format, policy class, shape and
dtype of every array, a CRC-32 checksum) followed by Equinox's serialisation of the policy's
arrays (`eqx.tree_serialise_leaves`). Loading needs a policy of the same kind
and shape (`like`) to fill in, as Equinox does: the header is checked against it
first, so a file saved from another policy, a truncated file or a file that is
not a Lerax policy fails with an error naming the file, not deep in NumPy.
"""

from __future__ import annotations

import io
import json
import os
import zlib
from pathlib import Path
from typing import Any, TypeVar

MAGIC = b"LERAX-POLICY\n"
"""The first bytes of every policy file."""
FORMAT = 1
"""The version of the file layout, stored in the header."""

P = TypeVar("P")


class PolicyFileError(ValueError):
    """A policy file cannot be loaded into the policy given as `like`."""


def _layout(policy: Any) -> list[list[Any]]:
    """`[shape, dtype]` of every array leaf, in tree order."""
    import equinox as eqx
    import jax
    import numpy as np

    leaves = jax.tree.leaves(eqx.filter(policy, eqx.is_array_like))
    return [[list(np.shape(x)), str(np.asarray(x).dtype)] for x in leaves]


def save(policy: Any, path: str | os.PathLike[str]) -> Path:
    """Write `policy`'s parameters to `path` (a file, replaced atomically).

    The policy's class and layout go in the header, so `load` can check them.
    Returns the path written.
    """
    import equinox as eqx

    from lerax.policy._policy import AbstractPolicy

    if not isinstance(policy, AbstractPolicy):
        raise TypeError(
            f"save writes a policy (an AbstractPolicy), got {type(policy).__name__}."
        )
    path = Path(path)
    header = {
        "format": FORMAT,
        "class": f"{type(policy).__module__}.{type(policy).__qualname__}",
        "leaves": _layout(policy),
    }
    body = io.BytesIO()
    eqx.tree_serialise_leaves(body, policy)
    header["crc32"] = zlib.crc32(body.getvalue())
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(MAGIC)
            file.write(json.dumps(header).encode() + b"\n")
            file.write(body.getvalue())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)  # a crash leaves the old file or the new one
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OSError(
            error.errno, f"cannot save the policy to {str(path)!r}: {error.strerror}"
        ) from None
    return path


def load(path: str | os.PathLike[str], *, like: P) -> P:
    """Read the policy saved at `path` into a policy shaped like `like`.

    `like` is a policy of the same class and sizes (its parameter values are
    ignored), e.g. `MLPActorCriticPolicy(env=env, key=jax.random.key(0))`.
    Raises `FileNotFoundError`, or `PolicyFileError` saying what differs.
    """
    import equinox as eqx

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no policy file at {str(path)!r}.") from None
    if not data.startswith(MAGIC):
        raise PolicyFileError(
            f"{str(path)!r} is not a policy saved by lerax.save (it does not "
            f"start with {MAGIC!r})."
        )
    line_end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC) : line_end])
    except ValueError:
        raise PolicyFileError(f"{str(path)!r} has a damaged header.") from None
    if header.get("format") != FORMAT:
        raise PolicyFileError(
            f"{str(path)!r} has format {header.get('format')!r}; this Lerax reads "
            f"format {FORMAT}."
        )
    expected = f"{type(like).__module__}.{type(like).__qualname__}"
    if header.get("class") != expected:
        raise PolicyFileError(
            f"{str(path)!r} holds a {header.get('class')}, but like= is a "
            f"{expected}; pass a policy of the saved class."
        )
    layout = _layout(like)
    saved = header.get("leaves")
    if saved != layout:
        raise PolicyFileError(
            f"{str(path)!r} holds a {type(like).__name__} of another shape: "
            f"{_first_difference(saved, layout)}. Build like= with the sizes "
            f"(and env) the policy was trained with."
        )
    body = data[line_end + 1 :]
    if zlib.crc32(body) != header.get("crc32"):
        raise PolicyFileError(
            f"{str(path)!r} is damaged (truncated or corrupted: its checksum does "
            f"not match); save the policy again or use another copy."
        )
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(body), like)
    except Exception as error:
        raise PolicyFileError(
            f"{str(path)!r} is damaged (truncated or corrupted): "
            f"{type(error).__name__}: {error}"
        ) from None


def _first_difference(saved: Any, layout: list[list[Any]]) -> str:
    if not isinstance(saved, list) or len(saved) != len(layout):
        count = len(saved) if isinstance(saved, list) else "?"
        return f"{count} arrays saved, {len(layout)} in like="
    for index, (a, b) in enumerate(zip(saved, layout, strict=True)):
        if a != b:
            return f"array {index} is {a[1]}{a[0]} in the file, {b[1]}{b[0]} in like="
    return "the layouts differ"  # pragma: no cover - unreachable when they differ
