"""CartPole with the dynamics, termination and time limit of Gymnasium's CartPole-v1."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import random as jr
from jaxtyping import Array, Bool, Float, Int, Key

from lerax.env._env import AbstractEnv
from lerax.env.spaces import Box, Discrete


class CartPoleState(eqx.Module):
    """Cart position and velocity, pole angle and angular velocity, and step count."""

    x: Float[Array, ""]
    x_dot: Float[Array, ""]
    theta: Float[Array, ""]
    theta_dot: Float[Array, ""]
    time: Int[Array, ""]

    def observation(self) -> Float[Array, "4"]:
        return jnp.stack([self.x, self.x_dot, self.theta, self.theta_dot])


class CartPole(AbstractEnv):
    """Balance a pole on a cart by pushing it left (action 0) or right (action 1).

    Reward is 1 per step; the episode terminates when the pole tilts more than
    12 degrees or the cart leaves `[-2.4, 2.4]`, and is truncated after
    `max_episode_steps` steps (500, as in CartPole-v1).
    """

    gravity: float = 9.8
    cart_mass: float = 1.0
    pole_mass: float = 0.1
    pole_half_length: float = 0.5
    force: float = 10.0
    dt: float = 0.02
    theta_threshold: float = 12 * 2 * math.pi / 360
    x_threshold: float = 2.4
    max_episode_steps: int = 500

    @property
    def observation_space(self) -> Box:  # pyright: ignore[reportIncompatibleVariableOverride]  # a property for an eqx.AbstractVar (equinox#882)
        bound = np.array(
            [
                2 * self.x_threshold,
                np.finfo(np.float32).max,
                2 * self.theta_threshold,
                np.finfo(np.float32).max,
            ],
            dtype=np.float32,
        )
        return Box(-bound, bound)

    @property
    def action_space(self) -> Discrete:  # pyright: ignore[reportIncompatibleVariableOverride]  # a property for an eqx.AbstractVar (equinox#882)
        return Discrete(2)

    def reset(self, *, key: Key[Array, ""]) -> tuple[CartPoleState, Float[Array, "4"]]:
        x, x_dot, theta, theta_dot = jr.uniform(key, (4,), minval=-0.05, maxval=0.05)
        state = CartPoleState(x, x_dot, theta, theta_dot, jnp.asarray(0, jnp.int32))
        return state, state.observation()

    def step(
        self, state: CartPoleState, action: Int[Array, ""], *, key: Key[Array, ""]
    ) -> tuple[
        CartPoleState,
        Float[Array, "4"],
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
    ]:
        del key  # deterministic dynamics
        total_mass = self.cart_mass + self.pole_mass
        pole_moment = self.pole_mass * self.pole_half_length
        force = jnp.where(action == 1, self.force, -self.force)
        cos, sin = jnp.cos(state.theta), jnp.sin(state.theta)

        temp = (force + pole_moment * state.theta_dot**2 * sin) / total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.pole_half_length * (4.0 / 3.0 - self.pole_mass * cos**2 / total_mass)
        )
        x_acc = temp - pole_moment * theta_acc * cos / total_mass

        # Explicit Euler, in the same order as Gymnasium.
        next_state = CartPoleState(
            x=state.x + self.dt * state.x_dot,
            x_dot=state.x_dot + self.dt * x_acc,
            theta=state.theta + self.dt * state.theta_dot,
            theta_dot=state.theta_dot + self.dt * theta_acc,
            time=state.time + 1,
        )
        terminated = (jnp.abs(next_state.x) > self.x_threshold) | (
            jnp.abs(next_state.theta) > self.theta_threshold
        )
        truncated = (next_state.time >= self.max_episode_steps) & ~terminated
        reward = jnp.asarray(1.0, jnp.float32)
        return next_state, next_state.observation(), reward, terminated, truncated
