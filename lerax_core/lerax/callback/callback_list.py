"""Run several callbacks as one."""

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Key, PyTree

from lerax.callback._callback import AbstractCallback
from lerax.callback.context import (
    AbstractContext,
    IterationContext,
    ResetContext,
    StepContext,
    TrainingContext,
)


class CallbackList(AbstractCallback):
    """Forward every hook to each member, in order, keeping each member's state apart.

    The list's state is the tuple of its members' states, and likewise for step
    states. Training continues only while every member wants it to.
    """

    callbacks: tuple[AbstractCallback, ...]

    def __init__(
        self, callbacks: list[AbstractCallback] | tuple[AbstractCallback, ...]
    ):
        for callback in callbacks:
            if not isinstance(callback, AbstractCallback):
                raise TypeError(
                    f"CallbackList members must be AbstractCallback instances, "
                    f"got {type(callback).__name__}."
                )
        self.callbacks = tuple(callbacks)

    def _each(self, hook: str, ctx: AbstractContext, key: Key[Array, ""]) -> list:
        keys = jax.random.split(key, max(len(self.callbacks), 1))
        results = []
        for i, callback in enumerate(self.callbacks):
            own = {"state": None if ctx.state is None else ctx.state[i]}
            if isinstance(ctx, IterationContext):
                own["step_state"] = ctx.step_state[i]
            member_ctx = dataclasses.replace(ctx, **own)
            results.append(getattr(callback, hook)(member_ctx, key=keys[i]))
        return results

    def reset(self, ctx: ResetContext, *, key: Key[Array, ""]) -> tuple[PyTree, ...]:
        return tuple(self._each("reset", ctx, key))

    def step_reset(
        self, ctx: ResetContext, *, key: Key[Array, ""]
    ) -> tuple[PyTree, ...]:
        return tuple(self._each("step_reset", ctx, key))

    def on_step(self, ctx: StepContext, *, key: Key[Array, ""]) -> tuple[PyTree, ...]:
        return tuple(self._each("on_step", ctx, key))

    def on_iteration(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> tuple[PyTree, ...]:
        return tuple(self._each("on_iteration", ctx, key))

    def on_training_start(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> tuple[PyTree, ...]:
        return tuple(self._each("on_training_start", ctx, key))

    def on_training_end(
        self, ctx: TrainingContext, *, key: Key[Array, ""]
    ) -> tuple[PyTree, ...]:
        return tuple(self._each("on_training_end", ctx, key))

    def continue_training(
        self, ctx: IterationContext, *, key: Key[Array, ""]
    ) -> Bool[Array, ""]:
        decisions = self._each("continue_training", ctx, key)
        return jnp.all(jnp.stack([jnp.asarray(True), *decisions]))

    def metrics(self, state: tuple[PyTree, ...]) -> dict[str, Float[Array, ""]]:
        """Every member's reported metrics; two members may not report one name."""
        merged: dict[str, Float[Array, ""]] = {}
        for callback, own in zip(self.callbacks, state, strict=True):
            for name, value in callback.metrics(own).items():
                if name in merged:
                    raise ValueError(
                        f"two callbacks report the metric {name!r} "
                        f"({type(callback).__name__} is the second); give each "
                        f"its own names."
                    )
                merged[name] = value
        return merged
