"""Discover plugins through entry points and collect the names they register."""

import contextlib
import difflib
import importlib
import importlib.metadata
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
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
SLOW_LOAD_SECONDS = 1.0
"""A plugin taking longer than this to import and register is listed as slow."""

Kind = Literal["callback", "backend"]

Status = Literal["ok", "broken", "disabled"]

FIRST_PARTY = {
    "console": "lerax-console",
    "tensorboard": "lerax-tensorboard",
    "wandb": "lerax-wandb",
    "progress": "lerax-progress",
    "eval": "lerax",
    "checkpoint": "lerax",
}
"""Names provided by Lerax's own plugins, and the distribution to install for each.

`eval` and `checkpoint` come with the core distribution itself
(`lerax.plugin.builtin`), which the selection variables never disable.

These names belong to these distributions: any other plugin that declares one
(as its entry point or as a registered name) is refused and listed as broken.
"""

CORE = "lerax"
"""The core distribution, whose entry point provides `eval` and `checkpoint`."""

FIRST_PARTY_EXPORTS = {
    "ConsoleBackend": "console",
    "TensorBoardBackend": "tensorboard",
    "WandbBackend": "wandb",
    "ProgressBarCallback": "progress",
}
"""Classes of Lerax's own plugins importable from `lerax.callback`, by plugin name."""


class PluginWarning(UserWarning):
    """An installed plugin cannot be used as installed: broken, conflicting, misnamed."""


class PluginConflictError(ValueError):
    """A plugin claims a name that belongs to another plugin."""


def normalise(distribution: str | None) -> str:
    """A distribution name as pip compares them: `Lerax_Console` is `lerax-console`."""
    return re.sub(r"[-_.]+", "-", distribution or "").lower()


def _first_party_owner(name: str, distribution: str | None) -> bool:
    return name in FIRST_PARTY and normalise(distribution) == FIRST_PARTY[name]


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
    """One discovered plugin and how loading it went.

    `conflicts` says which of its names another plugin keeps (or which it keeps
    from another); `load_seconds` is how long importing and registering took.
    """

    name: str
    distribution: str | None
    version: str | None
    status: Status = "ok"
    error: BaseException | None = None
    reason: str = ""
    hooks: list[str] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    load_seconds: float | None = None
    entry_point: importlib.metadata.EntryPoint | None = field(
        default=None, repr=False, compare=False
    )
    loaded: bool = field(default=False, repr=False, compare=False)
    warned: bool = field(default=False, repr=False, compare=False)

    @property
    def slow(self) -> bool:
        """Whether loading took longer than `SLOW_LOAD_SECONDS`."""
        return self.load_seconds is not None and self.load_seconds > SLOW_LOAD_SECONDS

    def mark_broken(self, error: BaseException) -> None:
        self.status, self.error = "broken", error
        self.reason = f"{type(error).__name__}: {error}"
        self.registrations.clear()


def _selected(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def installed_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The entry points of the group `lerax` of every installed distribution."""
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _order(entry_point: importlib.metadata.EntryPoint) -> tuple[str, bool, str]:
    """Entry points by name; for one name, Lerax's own distribution first."""
    dist = entry_point.dist.name if entry_point.dist else ""
    return (entry_point.name, not _first_party_owner(entry_point.name, dist), dist)


@contextlib.contextmanager
def _watch_ctrl_c() -> Iterator[list[bool]]:
    """Record whether a real Ctrl-C arrives inside the block.

    A plugin that raises `KeyboardInterrupt` itself is broken; a user's Ctrl-C
    during discovery must still stop the program.
    """
    seen = [False]
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if on_main else None
    if previous is None:  # not the main thread, or a handler set outside Python
        yield seen
        return

    def handler(signum: int, frame: Any) -> None:
        seen[0] = True
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


class PluginRegistry:
    """Every plugin found in the `lerax` entry-point group and the names they declare.

    Plugins are imported lazily: `find` of a name that is also an entry point's
    name imports only that plugin; reading `plugins` or `names` imports them all. Loading is isolated: a plugin that
    fails to import, fails pluggy's signature checks, raises (even `SystemExit`
    or `KeyboardInterrupt`) while registering, or claims a name that belongs to
    another plugin is marked broken with its error, and everything else keeps
    working.

    Who keeps a name two plugins register: a first-party name (`FIRST_PARTY`)
    only ever goes to its first-party distribution, and any other plugin
    registering it is broken; a name that is a plugin's entry-point name goes
    to that plugin (to nobody while it is disabled or broken); any other name
    to the plugin whose entry point sorts first. The plugin that loses a name
    keeps its others and lists the conflict in `conflicts`.
    """

    def __init__(
        self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
    ):
        self.manager = LeraxPluginManager()
        self._plugins: dict[str, PluginInfo] = {}
        self._names: dict[str, Registration] = {}
        self._complete = False
        self._lock = threading.RLock()
        if entry_points is None:
            entry_points = installed_entry_points()
        only, disabled = _selected(ONLY_VARIABLE), _selected(DISABLE_VARIABLE)
        for entry_point in sorted(entry_points, key=_order):
            info = self._describe(entry_point)
            key = info.name
            if key in self._plugins:
                key = f"{info.name} ({info.distribution})"
                info.mark_broken(self._duplicate(info, self._plugins[info.name]))
            elif info.name in FIRST_PARTY and not _first_party_owner(
                info.name, info.distribution
            ):
                info.mark_broken(
                    PluginConflictError(
                        f"distribution {info.distribution} declares the entry point "
                        f"{info.name!r}, which belongs to Lerax's own "
                        f"{FIRST_PARTY[info.name]}; it is not loaded. Uninstall "
                        f"{info.distribution} or ask its author to rename it."
                    )
                )
            elif normalise(info.distribution) == CORE:
                pass  # the core's own names are always available
            elif disabled is not None and info.name in disabled:
                info.status = "disabled"
                info.reason = f"disabled by {DISABLE_VARIABLE}"
            elif only is not None and info.name not in only:
                info.status = "disabled"
                info.reason = f"not listed in {ONLY_VARIABLE}"
            self._plugins[key] = info
        self._warn_unknown_selection(ONLY_VARIABLE, only)
        self._warn_unknown_selection(DISABLE_VARIABLE, disabled)

    @staticmethod
    def _describe(entry_point: importlib.metadata.EntryPoint) -> PluginInfo:
        dist = entry_point.dist
        return PluginInfo(
            name=entry_point.name,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            entry_point=entry_point,
        )

    @staticmethod
    def _duplicate(info: PluginInfo, holder: PluginInfo) -> PluginConflictError:
        return PluginConflictError(
            f"distribution {info.distribution} declares the entry point "
            f"{info.name!r}, which {holder.distribution} already declares; it is "
            f"not loaded. Uninstall one of the two."
        )

    def _warn_unknown_selection(self, variable: str, selected: set[str] | None):
        known = {info.name for info in self._plugins.values()}
        for name in sorted((selected or set()) - known):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            warnings.warn(
                f"{variable} names {name!r}, but no installed plugin is called "
                f"that.{hint} Installed plugins: "
                f"{', '.join(sorted(known)) or 'none'} (see `lerax plugins`).",
                PluginWarning,
                stacklevel=4,
            )

    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """Every discovered plugin by entry-point name, all of them loaded.

        A second distribution declaring an entry-point name already taken is
        listed as `"name (distribution)"`, broken.
        """
        self.load_all()
        return self._plugins

    @property
    def names(self) -> dict[str, Registration]:
        """Every registered name, after loading every plugin."""
        self.load_all()
        return self._names

    @property
    def discovered(self) -> dict[str, PluginInfo]:
        """The plugins found so far, without loading any more of them."""
        return self._plugins

    def load_all(self) -> None:
        """Import every enabled plugin and settle who keeps each name."""
        with self._lock:
            if self._complete:
                return
            for info in self._plugins.values():
                self._ensure_loaded(info)
            self._names = self._settle_names()
            self._complete = True

    def find(self, name: str) -> Registration | None:
        """The registration for `name`, or None.

        A name that is also an entry point's name (for first-party names: the
        first-party distribution's) belongs to that plugin, so only that plugin
        is imported to find it, unless it turns out not to register the name.
        """
        with self._lock:
            provider = None if self._complete else self.provider(name)
            if provider is not None:
                self._ensure_loaded(provider)
                if provider.status != "ok":
                    return None  # reserved for it: nobody else may serve the name
                for registration in provider.registrations:
                    if registration.name == name:
                        return registration
            return self.names.get(name)

    def provider(self, name: str) -> PluginInfo | None:
        """The plugin that `name` refers to by its entry point, if installed.

        A first-party name refers to its first-party distribution only.
        """
        if name in FIRST_PARTY:
            return next(
                (
                    info
                    for info in self._plugins.values()
                    if _first_party_owner(name, info.distribution)
                ),
                None,
            )
        return self._plugins.get(name)

    def _ensure_loaded(self, info: PluginInfo) -> None:
        if info.status == "ok" and not info.loaded:
            info.loaded = True
            start = time.perf_counter()
            self._load(info)
            info.load_seconds = time.perf_counter() - start

    def _load(self, info: PluginInfo) -> None:
        assert info.entry_point is not None
        plugin = None
        with _watch_ctrl_c() as ctrl_c:
            try:
                plugin = info.entry_point.load()
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
            except BaseException as error:  # isolate: even sys.exit in a plugin
                if isinstance(error, KeyboardInterrupt) and ctrl_c[0]:
                    raise  # the user's Ctrl-C, not the plugin's
                info.mark_broken(error)
                if plugin is not None and self.manager.is_registered(plugin):
                    self.manager.unregister(plugin)

    def _collect(self, plugin: Any, info: PluginInfo, kind: Kind) -> None:
        hook = getattr(self.manager.hook, f"lerax_register_{kind}s")
        for impl in hook.get_hookimpls():
            if impl.plugin is not plugin:
                continue

            def register(name: str, factory: Any, description: str = "") -> None:
                _check(info, name, factory, description)
                info.registrations.append(
                    Registration(name, kind, factory, description, info.name)
                )

            impl.function(register=register)

    def _settle_names(self) -> dict[str, Registration]:
        claims: dict[str, list[Registration]] = {}
        for info in self._plugins.values():
            if info.status == "ok":
                for registration in info.registrations:
                    claims.setdefault(registration.name, []).append(registration)
        names = {}
        for name, claimants in claims.items():
            keeper = self._keeper(name, claimants)
            if keeper is not None:
                names[name] = keeper
            for lost in claimants:
                if lost is not keeper:
                    loser = self._plugins[lost.plugin]
                    loser.registrations.remove(lost)
                    loser.conflicts.append(self._lost(name, keeper))
        return names

    def _keeper(self, name: str, claimants: list[Registration]) -> Registration | None:
        provider = self.provider(name)
        if provider is None:
            return claimants[0]  # the entry point that sorts first
        if provider.status != "ok":
            return None
        return next((r for r in claimants if r.plugin == provider.name), claimants[0])

    def _lost(self, name: str, keeper: Registration | None) -> str:
        if keeper is not None:
            return f"{name!r} is also registered by plugin {keeper.plugin!r}, which keeps it"
        provider = self.provider(name)
        assert provider is not None
        return (
            f"{name!r} belongs to plugin {provider.name!r} ({provider.distribution}), "
            f"which is {provider.status}, so nobody provides it"
        )

    def find_export(self, attribute: str) -> Registration | None:
        """The registration whose factory is called `attribute`, if any.

        The classes of Lerax's own plugins come only from their distributions.
        """
        if attribute in FIRST_PARTY_EXPORTS:
            registration = self.find(FIRST_PARTY_EXPORTS[attribute])
            if registration is not None and registration.export_name == attribute:
                return registration
            return None
        for registration in self.names.values():
            if registration.export_name == attribute:
                return registration
        return None

    def warn_problems(self, skip: PluginInfo | None = None) -> None:
        """Warn once about each loaded plugin that is broken or in a conflict."""
        for info in self._plugins.values():
            if info.warned or info is skip:
                continue
            if info.status == "broken":
                info.warned = True
                warnings.warn(
                    f"Lerax plugin {info.name!r} ({info.distribution} "
                    f"{info.version}) is broken and skipped: {info.reason} Run "
                    f"`lerax plugins` to see every plugin, or set "
                    f"{DISABLE_VARIABLE}={info.name} to stop loading it.",
                    PluginWarning,
                    stacklevel=3,
                )
            elif info.conflicts:
                info.warned = True
                warnings.warn(
                    f"Lerax plugin {info.name!r} ({info.distribution}): "
                    f"{'; '.join(info.conflicts)}. Run `lerax plugins` to see "
                    f"who provides what; {DISABLE_VARIABLE} chooses between them.",
                    PluginWarning,
                    stacklevel=3,
                )


def _check(info: PluginInfo, name: Any, factory: Any, description: Any) -> None:
    """Refuse a registration that is malformed or takes another plugin's name."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"registered name must be a non-empty string, got {name!r}")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise TypeError(
            f"factory for {name!r} must be a callable or a 'module:attribute' "
            f"string, got {factory!r}"
        )
    if not isinstance(description, str):
        raise TypeError(
            f"description of {name!r} must be a string, got {description!r}"
        )
    if any(r.name == name for r in info.registrations):
        raise ValueError(f"plugin {info.name!r} registers {name!r} twice")
    if name in FIRST_PARTY and not _first_party_owner(name, info.distribution):
        raise PluginConflictError(
            f"plugin {info.name!r} ({info.distribution}) registers {name!r}, a "
            f"name that belongs to Lerax's own {FIRST_PARTY[name]}; the plugin is "
            f"refused so that {name!r} cannot be taken over. Uninstall "
            f"{info.distribution} or ask its author to rename it."
        )


_registry: PluginRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> PluginRegistry:
    """The process-wide registry, discovering plugins on first use."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = PluginRegistry()
        return _registry


def reload_registry() -> PluginRegistry:
    """Discover plugins again (after installing one, or changing the variables)."""
    global _registry
    with _registry_lock:
        _registry = None
    return get_registry()


class UnknownNameError(LookupError):
    """No installed plugin provides the requested callback or backend name."""


def lookup(name: str, registry: PluginRegistry | None = None) -> Registration:
    """The registration for `name`, or an error that says how to get it.

    Unknown names list the installed ones and suggest the closest, including
    the names of Lerax's own plugins that are not installed, which come with the
    `pip install` that adds them; a disabled plugin's name says which variable
    disabled it; a broken plugin's name raises the error that broke it. Other
    plugins found broken or in a conflict on the way are reported once, with a
    `lerax.plugin.registry.PluginWarning`.
    """
    if not isinstance(name, str):
        raise TypeError(
            f"a plugin name must be a string such as 'console', got "
            f"{type(name).__name__} {name!r}; pass callback or backend objects to "
            f"learn(callback=...) directly."
        )
    registry = registry or get_registry()
    registration = registry.find(name)
    provider = registry.provider(name)
    registry.warn_problems(skip=provider if registration is None else None)
    if registration is not None:
        return registration
    if provider is not None and provider.status == "disabled":
        raise UnknownNameError(
            f"{name!r} comes from plugin {provider.name!r}, which is "
            f"{provider.reason}; unset or edit that variable to use it."
        )
    if provider is not None and provider.status == "broken":
        assert provider.error is not None
        raise provider.error
    raise UnknownNameError(_unknown_message(name, sorted(registry.names)))


def _unknown_message(name: str, installed: list[str]) -> str:
    message = f"No callback or logging backend is named {name!r}."
    missing = sorted(set(FIRST_PARTY) - set(installed))
    if name in missing:
        suggestion: str | None = name
    else:
        close = difflib.get_close_matches(name, installed + missing, n=1)
        suggestion = close[0] if close else None
        if suggestion is not None:
            message += f" Did you mean {suggestion!r}?"
    message += f" Installed: {', '.join(installed) if installed else 'none'}."
    if suggestion in missing and FIRST_PARTY[suggestion] == CORE:
        message += (
            f" {suggestion!r} comes with Lerax itself, whose entry point is not "
            f"installed: reinstall lerax (from a checkout: pip install -e .)."
        )
    elif suggestion in missing:
        dist = FIRST_PARTY[suggestion]
        message += (
            f" {suggestion!r} is provided by {dist}, which is not installed: "
            f"pip install {dist} (from a Lerax checkout: pip install "
            f"./plugins/{dist})."
        )
    else:
        message += " Run `lerax plugins` to see every plugin and its status."
    return message
