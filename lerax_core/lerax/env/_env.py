"""The environment interface: pure `reset`/`step` functions over an explicit state."""

from abc import abstractmethod
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Bool, Float, Key, PyTree

from lerax.env.spaces import AbstractSpace


class AbstractEnv(eqx.Module):
    """A single environment as pure functions, to be `vmap`ped over many copies.

    Subclasses hold only constants (physics, limits); everything that changes lives
    in the state that `reset` returns and `step` threads. Auto-reset and batching
    are provided here once, so a new environment is just a new `reset` and `step`.
    """

    if TYPE_CHECKING:
        # Not `__init__` parameters to a type checker, so that `CartPole()`, whose
        # spaces are properties, type-checks (equinox#1123); a subclass that
        # makes them fields redeclares them, which makes them parameters again.
        observation_space: AbstractSpace = eqx.field(init=False)
        action_space: AbstractSpace = eqx.field(init=False)
    else:
        observation_space: AbstractVar[AbstractSpace]
        action_space: AbstractVar[AbstractSpace]

    @abstractmethod
    def reset(self, *, key: Key[Array, ""]) -> tuple[PyTree, Array]:
        """Start an episode: return `(state, observation)`."""

    @abstractmethod
    def step(
        self, state: PyTree, action: Array, *, key: Key[Array, ""]
    ) -> tuple[PyTree, Array, Float[Array, ""], Bool[Array, ""], Bool[Array, ""]]:
        """Advance one step: return `(state, observation, reward, terminated, truncated)`.

        `terminated` means the episode reached a terminal state (no bootstrapping);
        `truncated` means it was cut short by a time limit.
        """

    def auto_reset_step(
        self, state: PyTree, action: Array, *, key: Key[Array, ""]
    ) -> tuple[
        PyTree, Array, Float[Array, ""], Bool[Array, ""], Bool[Array, ""], Array
    ]:
        """`step`, then `reset` if the episode ended.

        Returns `(state, observation, reward, terminated, truncated, final_observation)`
        where `observation` already belongs to the new episode when one ended and
        `final_observation` is the last observation of the old one (for bootstrapping
        truncated episodes).
        """
        step_key, reset_key = jax.random.split(key)
        next_state, obs, reward, terminated, truncated = self.step(
            state, action, key=step_key
        )
        reset_state, reset_obs = self.reset(key=reset_key)
        done = terminated | truncated
        next_state = jax.tree.map(
            lambda r, s: jnp.where(done, r, s), reset_state, next_state
        )
        return (
            next_state,
            jnp.where(done, reset_obs, obs),
            reward,
            terminated,
            truncated,
            obs,
        )
