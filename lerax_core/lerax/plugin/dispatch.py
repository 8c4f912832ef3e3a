"""Moved to [`lerax.logging`][]; this module keeps old imports working."""

from lerax.logging.dispatch import BackendDispatcher

__all__ = ["BackendDispatcher"]
