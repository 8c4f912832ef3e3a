"""Moved to [`lerax.logging`][]; this module keeps old imports working."""

from lerax.plugin.hookspecs import AbstractLoggingBackend

__all__ = ["AbstractLoggingBackend"]
