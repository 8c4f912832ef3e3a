"""The plugin system: hook specs, entry-point discovery and the name registry.

Importing this package is cheap (pluggy and the standard library only); plugins
are discovered on first use of [`get_registry`][lerax.plugin.get_registry].
"""

from lerax.plugin.hookspecs import AbstractLoggingBackend, hookimpl, hookspec
from lerax.plugin.registry import (
    DISABLE_VARIABLE,
    ENTRY_POINT_GROUP,
    ONLY_VARIABLE,
    PluginConflictError,
    PluginInfo,
    PluginRegistry,
    PluginWarning,
    Registration,
    UnknownNameError,
    get_registry,
    lookup,
    reload_registry,
)

__all__ = [
    "DISABLE_VARIABLE",
    "ENTRY_POINT_GROUP",
    "ONLY_VARIABLE",
    "AbstractLoggingBackend",
    "PluginConflictError",
    "PluginInfo",
    "PluginRegistry",
    "PluginWarning",
    "Registration",
    "UnknownNameError",
    "get_registry",
    "hookimpl",
    "hookspec",
    "lookup",
    "reload_registry",
]
