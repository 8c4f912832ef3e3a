"""Logging: one host crossing per iteration, from the jitted loop to every backend.

The data path crosses each module once:
[`LoggingCallback`][lerax.logging.LoggingCallback] gathers an iteration's metrics
inside the jit and sends them through [`lerax.host`][] to its
[`HostLogger`][lerax.logging.HostLogger], which names the run and times it, and
hands each event to the [`BackendDispatcher`][lerax.logging.BackendDispatcher],
which delivers it to every
[`AbstractLoggingBackend`][lerax.logging.AbstractLoggingBackend] (console,
TensorBoard, W&B, ...) off the training thread.
"""

from lerax.logging.callback import EpisodeStats, LoggingCallback, LoggingState
from lerax.logging.dispatch import BackendDispatcher
from lerax.logging.host_logger import HostLogger
from lerax.logging.names import DEPRECATED_METRICS
from lerax.plugin.hookspecs import LOGGING_HOOKS, AbstractLoggingBackend

__all__ = [
    "DEPRECATED_METRICS",
    "LOGGING_HOOKS",
    "AbstractLoggingBackend",
    "BackendDispatcher",
    "EpisodeStats",
    "HostLogger",
    "LoggingCallback",
    "LoggingState",
]
