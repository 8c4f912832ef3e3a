"""Moved to [`lerax.logging`][]; this module keeps old imports working."""

from lerax.logging.callback import EpisodeStats, LoggingCallback, LoggingState

__all__ = ["EpisodeStats", "LoggingCallback", "LoggingState"]
