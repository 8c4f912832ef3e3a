"""Training algorithms: [`PPO`][lerax.algorithm.PPO]."""

from lerax.algorithm._algorithm import AbstractAlgorithm
from lerax.algorithm.ppo import PPO

__all__ = ["PPO", "AbstractAlgorithm"]
