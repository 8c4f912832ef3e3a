"""Discover plugins through entry points and collect the names they register."""

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from lerax.plugin import hookspecs
from lerax.plugin.hookspecs import LOGGING_HOOKS

ENTRY_POINT_GROUP = "lerax"
"""The entry-point group in which distributions declare Lerax plugins."""
ONLY_VARIABLE = "LERAX_PLUGINS"
"""Environment variable: comma-separated plugins to load, and no others."""
DISABLE_VARIABLE = "LERAX_DISABLE_PLUGINS"
"""Environment variable: comma-separated plugins not to load."""

Kind = Literal["callback", "backend"]

Status = Literal["ok", "broken", "disabled"]

FIRST_PARTY = {
    "console": "lerax-console",
    "tensorboard": "lerax-tensorboard",
    "wandb": "lerax-wandb",
    "progress": "lerax-progress",
}
"""Names provided by Lerax's own plugins, and the distribution to install for each."""

FIRST_PARTY_EXPORTS = {
    "ConsoleBackend": "console",
    "TensorBoardBackend": "tensorboard",
    "WandbBackend": "wandb",
    "ProgressBarCallback": "progress",
}
"""Classes of Lerax's own plugins importable from `lerax.callback`, by plugin name."""


class LeraxPluginManager(pluggy.PluginManager):
    """A pluggy manager for the `lerax` hooks.

    Like pytest's, it treats every `lerax_*` function or method as an
    implementation even without the `hookimpl` marker, so a backend subclass can
    override a hook method with a plain `def`.
    """

    def __init__(self) -> None:
        super().__init__("lerax")
        self.add_hookspecs(hookspecs)
        self.add_hookspecs(hookspecs.AbstractLoggingBackend)

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("lerax_"):
            attr = getattr(plugin, name, None)
            if callable(attr) and not isinstance(attr, type):
                return {}
        return opts

    def register_checked(self, plugin: Any, name: str) -> None:
        """Register `plugin`, rejecting bad signatures and unknown `lerax_` hooks."""
        self.register(plugin, name=name)
        unknown = [
            hook.name
            for hook in self.get_hookcallers(plugin) or []
            if not hook.has_spec()
        ]
        if unknown:
            self.unregister(plugin)
            raise pluggy.PluginValidationError(
                plugin,
                f"plugin {name!r} implements unknown hook(s) {', '.join(unknown)}; "
                f"the hooks are listed in lerax.plugin.hookspecs.",
            )


@dataclass(frozen=True)
class Registration:
    """A name a plugin declared, with what builds it."""

    name: str
    kind: Kind
    factory: Callable[..., Any] | str
    description: str
    plugin: str

    @property
    def export_name(self) -> str:
        """The attribute name of the factory (`ConsoleBackend`)."""
        if isinstance(self.factory, str):
            return self.factory.rpartition(":")[2]
        return getattr(self.factory, "__name__", "")

    def load(self) -> Callable[..., Any]:
        """The factory, importing it first if it was given as `"module:attr"`."""
        if not isinstance(self.factory, str):
            return self.factory
        module, _, attr = self.factory.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


@dataclass
class PluginInfo:
    """One discovered plugin and how loading it went."""

    name: str
    distribution: str | None
    version: str | None
    status: Status = "ok"
    error: BaseException | None = None
    reason: str = ""
    hooks: list[str] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)


def _selected(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginRegistry:
    """Every plugin found in the `lerax` entry-point group and the names they declare.

    Loading is isolated: a plugin that fails to import, fails pluggy's signature
    checks or raises while registering is marked broken with its error, and
    everything else keeps working.
    """

    def __init__(self, entry_points: list[importlib.metadata.EntryPoint] | None = None):
        self.manager = LeraxPluginManager()
        self.plugins: dict[str, PluginInfo] = {}
        self.names: dict[str, Registration] = {}
        if entry_points is None:
            entry_points = list(
                importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            )
        # A stable order: listings are sorted, and when two plugins claim the same
        # name the one whose entry point sorts first keeps it.
        entry_points = sorted(entry_points, key=lambda ep: ep.name)
        only, disabled = _selected(ONLY_VARIABLE), _selected(DISABLE_VARIABLE)
        for entry_point in entry_points:
            info = self._describe(entry_point)
            self.plugins[info.name] = info
            if disabled is not None and info.name in disabled:
                info.status = "disabled"
                info.reason = f"disabled by {DISABLE_VARIABLE}"
            elif only is not None and info.name not in only:
                info.status = "disabled"
                info.reason = f"not listed in {ONLY_VARIABLE}"
            else:
                self._load(entry_point, info)

    @staticmethod
    def _describe(entry_point: importlib.metadata.EntryPoint) -> PluginInfo:
        dist = entry_point.dist
        return PluginInfo(
            name=entry_point.name,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
        )

    def _load(self, entry_point: importlib.metadata.EntryPoint, info: PluginInfo):
        plugin = None
        try:
            plugin = entry_point.load()
            self.manager.register_checked(plugin, info.name)
            info.hooks = sorted(
                hook.name for hook in self.manager.get_hookcallers(plugin) or []
            )
            misplaced = sorted(set(info.hooks) & LOGGING_HOOKS)
            if misplaced:
                raise pluggy.PluginValidationError(
                    plugin,
                    f"plugin {info.name!r} implements the logging hook(s) "
                    f"{', '.join(misplaced)} as module functions, where nothing "
                    f"calls them: make them methods of an AbstractLoggingBackend "
                    f"and register it with lerax_register_backends.",
                )
            for kind in ("callback", "backend"):
                self._collect(plugin, info, kind)
        except Exception as error:  # isolate: one bad plugin never breaks others
            info.status, info.error = "broken", error
            info.reason = f"{type(error).__name__}: {error}"
            for registration in info.registrations:
                self.names.pop(registration.name, None)
            info.registrations.clear()
            if plugin is not None and self.manager.is_registered(plugin):
                self.manager.unregister(plugin)

    def _collect(self, plugin: Any, info: PluginInfo, kind: Kind) -> None:
        hook = getattr(self.manager.hook, f"lerax_register_{kind}s")
        for impl in hook.get_hookimpls():
            if impl.plugin is not plugin:
                continue

            def register(name: str, factory: Any, description: str = "") -> None:
                self._add(Registration(name, kind, factory, description, info.name))
                info.registrations.append(self.names[name])

            impl.function(register=register)

    def _add(self, registration: Registration) -> None:
        name, factory = registration.name, registration.factory
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"registered name must be a non-empty string, got {name!r}"
            )
        if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
            raise TypeError(
                f"factory for {name!r} must be a callable or a 'module:attribute' "
                f"string, got {factory!r}"
            )
        if name in self.names:
            raise ValueError(
                f"name {name!r} is already registered by plugin "
                f"{self.names[name].plugin!r}"
            )
        self.names[name] = registration

    def find_export(self, attribute: str) -> Registration | None:
        """The registration whose factory is called `attribute`, if any."""
        for registration in self.names.values():
            if registration.export_name == attribute:
                return registration
        return None


_registry: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry, discovering plugins on first use."""
    global _registry
    if _registry is None:
        _registry = PluginRegistry()
    return _registry


def reload_registry() -> PluginRegistry:
    """Discover plugins again (after installing one, or changing the variables)."""
    global _registry
    _registry = None
    return get_registry()


class UnknownNameError(LookupError):
    """No installed plugin provides the requested callback or backend name."""


def lookup(name: str, registry: PluginRegistry | None = None) -> Registration:
    """The registration for `name`, or an error that says how to get it.

    Unknown names list the installed ones and suggest the closest; names of
    Lerax's own plugins that are not installed come with the `pip install` that
    adds them; a disabled plugin's name says which variable disabled it; a
    broken plugin's name raises the error that broke it.
    """
    import difflib

    registry = registry or get_registry()
    if name in registry.names:
        return registry.names[name]
    for info in registry.plugins.values():
        if info.name == name or info.distribution == FIRST_PARTY.get(name):
            if info.status == "disabled":
                raise UnknownNameError(
                    f"{name!r} comes from plugin {info.name!r}, which is "
                    f"{info.reason}; unset or edit that variable to use it."
                )
            if info.status == "broken" and info.error is not None:
                raise info.error
    installed = sorted(registry.names)
    message = f"No callback or logging backend is named {name!r}."
    close = difflib.get_close_matches(name, installed, n=1)
    if close:
        message += f" Did you mean {close[0]!r}?"
    message += f" Installed: {', '.join(installed) if installed else 'none'}."
    if name in FIRST_PARTY:
        dist = FIRST_PARTY[name]
        message += (
            f" {name!r} is provided by {dist}: pip install {dist} "
            f"(from a Lerax checkout: pip install ./plugins/{dist})."
        )
    else:
        message += " Run `lerax plugins` to see every plugin and its status."
    raise UnknownNameError(message)
