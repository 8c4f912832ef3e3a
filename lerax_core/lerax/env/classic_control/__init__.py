"""Classic control tasks."""

from lerax.env.classic_control.cartpole import CartPole, CartPoleState

__all__ = ["CartPole", "CartPoleState"]
