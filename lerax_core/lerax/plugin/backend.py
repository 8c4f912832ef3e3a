"""The logging-backend interface that plugins implement."""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any


class AbstractLoggingBackend(ABC):
    """Somewhere metrics go: a terminal, event files, an experiment tracker.

    Its methods *are* the implementations of the logging hook specs in
    [`lerax.plugin.hookspecs`][], so Lerax calls them through pluggy, which
    checks their signatures when the backend is registered. They run on a
    background thread fed by a bounded queue, receive plain Python values, and are
    never called from inside the jitted loop.

    Construct cheaply and fail early (bad paths, missing credentials) in
    `__init__`; import heavy libraries inside the methods or `__init__`, not at
    module level, so that plugin discovery stays fast. Start libraries that
    register exit handlers of their own (writers with background threads, W&B)
    in `lerax_on_training_start` or earlier: Lerax re-registers its exit-time
    flush after that hook, so pending events are delivered before those
    libraries shut down.
    """

    @abstractmethod
    def lerax_on_training_start(
        self, run_name: str, hyperparameters: Mapping[str, Any]
    ) -> None:
        """A run starts: open files or runs, record the hyper-parameters."""

    @abstractmethod
    def lerax_on_iteration(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record one iteration's metrics at environment step `step`."""

    def lerax_on_training_end(self, step: int, reason: str) -> None:
        """Training ended at `step`: `"completed"`, `"stopped"` or `"interrupted"`.

        Does nothing by default; overrides may accept just `step`.
        """
        return None

    @abstractmethod
    def lerax_close(self) -> None:
        """Flush and release everything; safe to call more than once."""
