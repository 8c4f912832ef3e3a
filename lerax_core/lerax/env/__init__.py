"""Environments as pure functions: [`AbstractEnv`][lerax.env.AbstractEnv] and spaces."""

from lerax.env._env import AbstractEnv
from lerax.env.spaces import AbstractSpace, Box, Discrete

__all__ = ["AbstractEnv", "AbstractSpace", "Box", "Discrete"]
