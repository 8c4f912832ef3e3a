"""Training algorithms: [`PPO`][lerax.algorithm.PPO]."""

from lerax.algorithm._algorithm import AbstractAlgorithm
from lerax.algorithm.interrupt import TrainingInterrupted
from lerax.algorithm.ppo import PPO

__all__ = ["PPO", "AbstractAlgorithm", "TrainingInterrupted"]
