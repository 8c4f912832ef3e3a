"""The callback interface: hooks called from inside the jitted training loop."""

from abc import abstractmethod

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Key, PyTree

from lerax.callback.context import (
    IterationContext,
    ResetContext,
    StepContext,
    TrainingContext,
)


class AbstractCallback(eqx.Module):
    """Monitor or control training from inside the jitted loop.

    A callback is a pure function of its context: each hook returns the callback's
    new state, which the loop threads like optax threads optimizer state. There are
    two states: a global one made by `reset` and updated by `on_training_start`,
    `on_iteration` and `on_training_end`, and a per-environment *step state* made
    by `step_reset` before every rollout and updated by `on_step`.

    Hooks run traced, so side effects must leave through JAX host callbacks
    (`jax.debug.callback`), ideally once per iteration rather than per step.

    Subclasses implement `reset` and `step_reset` and override the other hooks
    they need; the defaults return the state unchanged and never stop training.
    """

    @abstractmethod
    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> PyTree:
        """Make the global state, once before training (`ctx.state` is `None`)."""

    @abstractmethod
    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> PyTree:
        """Make one environment's step state, before each rollout."""

    def on_step(self, ctx: StepContext, *, key: Key[Array, ""]) -> PyTree:
        """After each environment step, per environment: return the step state."""
        return ctx.state

    def on_iteration(self, ctx: IterationContext, *, key: Key[Array, ""]) -> PyTree:
        """After each rollout and update: return the global state."""
        return ctx.state

    def on_training_start(self, ctx: TrainingContext, *, key: Key[Array, ""]) -> PyTree:
        """Before the first iteration: return the global state."""
        return ctx.state

    def on_training_end(self, ctx: TrainingContext, *, key: Key[Array, ""]) -> PyTree:
        """After the last iteration (or an early stop): return the global state."""
        return ctx.state

    def continue_training(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> Bool[Array, ""]:
        """After `on_iteration`: `False` stops training at this iteration."""
        return jnp.asarray(True)

    def metrics(self, state: PyTree) -> dict[str, Float[Array, ""]]:
        """Scalars this callback reports to logging backends, read from its state.

        Called by the loop after `continue_training`, every iteration, with the
        state `on_iteration` returned; the names must not change between calls.
        The values travel with the same iteration's training metrics in the
        one host call per iteration that
        [`LoggingCallback`][lerax.logging.LoggingCallback] makes, and a NaN
        value is left out of that row: report NaN on iterations where there is
        nothing to report (e.g. no evaluation ran). None by default.
        """
        return {}


class AbstractStatelessCallback(AbstractCallback):
    """A callback with no state: override only the hooks you need."""

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        return None

    def step_reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> None:
        return None


class EmptyCallback(AbstractStatelessCallback):
    """A callback that does nothing: the default when `callback=None`."""
