"""Lerax plugin `progress`: a rich progress bar over a training run.

This module only registers the name; the callback itself lives in
`lerax_progress.callback`, which imports JAX, Equinox and rich, and is imported
the first time the name `progress` (or the class `ProgressBarCallback`) is used,
so that plugin discovery stays fast.
"""

from lerax import hookimpl


@hookimpl
def lerax_register_callbacks(register) -> None:
    register(
        "progress",
        "lerax_progress.callback:ProgressBarCallback",
        "A rich progress bar of environment steps, updated once per iteration.",
    )
