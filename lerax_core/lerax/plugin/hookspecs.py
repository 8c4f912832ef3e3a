"""The hook specifications: everything a Lerax plugin can implement.

A plugin is a module (or object) listed under the entry-point group `lerax` whose
functions are named after these hooks and marked with [`hookimpl`][lerax.hookimpl].
Registration hooks run once, when plugins are first needed.

The logging hooks are the methods of
[`AbstractLoggingBackend`][lerax.logging.AbstractLoggingBackend], defined below:
they run on the host once per training iteration, never per environment step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pluggy

hookspec = pluggy.HookspecMarker("lerax")
"""Marks the hook specifications below (for Lerax itself)."""
hookimpl = pluggy.HookimplMarker("lerax")
"""Marks a plugin's hook implementations: `from lerax import hookimpl`."""


class Register(Protocol):
    """The `register` argument of the registration hooks."""

    def __call__(
        self, name: str, factory: Callable[..., Any] | str, description: str = ""
    ) -> None:
        """Declare `name`: built by `factory(**options)`.

        `factory` is a callable, or a `"module:attribute"` reference imported only
        when the name is first used, which keeps plugin discovery fast when the
        factory's module imports something heavy. `description` is one line for
        `lerax plugins` (empty by default). A plugin that registers a name twice,
        a non-string name or description, or one of Lerax's own names
        (`console`, `tensorboard`, `wandb`, `progress`) is listed as broken.
        """


@hookspec
def lerax_register_callbacks(register: Register) -> None:
    """Declare the named callbacks this plugin provides.

    Each name becomes usable as `learn(..., callback="name")` and through
    `lerax.callback.make("name", **options)`; the factory must return an
    [`AbstractCallback`][lerax.callback.AbstractCallback].
    """


@hookspec
def lerax_register_backends(register: Register) -> None:
    """Declare the named logging backends this plugin provides.

    The factory must return an
    [`AbstractLoggingBackend`][lerax.callback.AbstractLoggingBackend]. Backends
    named together in one `callback=[...]` share one
    [`LoggingCallback`][lerax.logging.LoggingCallback].
    """


class AbstractLoggingBackend(ABC):
    """Somewhere metrics go: a terminal, event files, an experiment tracker.

    Its four methods are the logging hook specs: a backend implements them as
    methods, and Lerax calls them through pluggy, which checks their signatures
    when the backend is handed to a
    [`LoggingCallback`][lerax.logging.LoggingCallback]. They run on the host,
    on a worker thread of the backend's own, fed in order; they receive plain
    Python values and are never called from inside the jitted loop.

    Construct cheaply and fail early (bad paths, missing credentials) in
    `__init__`; import heavy libraries there or inside the methods, not at
    module level, so that plugin discovery stays fast.

    **Many runs.** When `learn` trains many members at once, a backend without
    a `member` argument gets the group's aggregate run as one ordinary run. A
    backend whose hooks also take the keyword arguments `member: int | None =
    None` (and, at start, `group: str | None = None`) gets every member's run
    as well (`member=0, 1, ...`), each started, fed and ended on its own, and
    the aggregate run as `member=None` with `group` set. For a single run both
    are `None`. The defaults keep the hooks callable, and typed, as the specs
    below.
    """

    @hookspec
    @abstractmethod
    def lerax_on_training_start(
        self, run_name: str, hyperparameters: Mapping[str, Any]
    ) -> None:
        """A run starts: `run_name` is unique and readable, `hyperparameters` flat.

        Keys of `hyperparameters` are prefixed `algorithm/`, `env/` and
        `policy/`, plus `run/total_timesteps` (the steps `learn` was asked for
        per member, for progress displays); values are `bool`, `int`, `float`
        or `str`. Open files or runs here.

        With many members, `group` (keyword) is the group's name (the run name
        a single run would have); a member's `run_name` is `<group>/member-<i>`
        and its hyperparameters hold its own values of the varied
        hyper-parameters plus `run/group`, `run/member`, `run/members` and
        `run/key` (its PRNG key's data); the aggregate run's `run_name` is the
        group's name and its hyperparameters hold `run/members` and
        `run/varied` (the names of the hyper-parameters that vary).
        """

    @hookspec
    @abstractmethod
    def lerax_on_iteration(self, step: int, metrics: Mapping[str, float]) -> None:
        """One training iteration finished at environment step `step`.

        `metrics` maps stable names (`episode/return`, `train/policy_loss`, ...)
        to Python floats, which may be NaN or infinite. An aggregate run's row
        holds each metric's mean across the members under its own name, the
        standard deviation, minimum and maximum of the `episode/` metrics with
        the suffixes `_std`, `_min` and `_max`, and `members/running`; its
        `time/steps_per_second` counts every member's steps.
        """

    @hookspec
    def lerax_on_training_end(self, step: int, reason: str) -> None:
        """Training ended at environment step `step`.

        `reason` says why: `"completed"` (all requested steps ran), `"stopped"`
        (a callback's `continue_training` ended it early), `"interrupted"`
        (Ctrl-C or SIGTERM) or `"diverged"` (the policy's parameters became
        NaN or infinite). An aggregate run ends `"interrupted"` if any member
        was, else with its members' common reason, else `"stopped"`. Optional:
        does nothing by default, and implementations may leave `reason` out of
        their signature.
        """
        return None

    @hookspec
    @abstractmethod
    def lerax_close(self) -> None:
        """Flush and release everything. Must be idempotent."""

    @hookspec
    def lerax_on_resume(self, step: int, run_id: str | None) -> None:
        """The next run continues one saved in a checkpoint, from environment step `step`.

        Called just before `lerax_on_training_start` of a run resumed with
        `learn(..., resume_from=...)`, whose run name is the saved run's.
        Rows from `step` on supersede those the interrupted run logged
        there (TensorBoard purges them). `run_id` is what `resume_id()`
        returned when the checkpoint was written (a W&B run id), or `None`.
        Optional: does nothing by default.
        """
        return None

    def resume_id(self) -> str | None:
        """An id under which the tracker can continue the current run later.

        Saved in checkpoints and handed back to `lerax_on_resume` (W&B: the run
        id). Read from another thread while training runs. `None` by default.
        """
        return None


LOGGING_HOOKS = frozenset(
    name for name in vars(AbstractLoggingBackend) if name.startswith("lerax_")
)
"""The hooks that logging backends implement as methods."""
