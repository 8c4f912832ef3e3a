"""Training algorithms, all run by one jitted loop: [`PPO`][lerax.algorithm.PPO],
[`A2C`][lerax.algorithm.A2C] and [`DQN`][lerax.algorithm.DQN]."""

from lerax.algorithm._algorithm import AbstractAlgorithm, DivergenceWarning
from lerax.algorithm._grid import grid
from lerax.algorithm.a2c import A2C
from lerax.algorithm.dqn import DQN, DQNState
from lerax.algorithm.interrupt import TrainingInterrupted
from lerax.algorithm.on_policy import (
    AbstractOnPolicyAlgorithm,
    ActorCriticExtras,
    Batch,
    OnPolicyState,
)
from lerax.algorithm.ppo import PPO
from lerax.algorithm.rollout import Rollout

__all__ = [
    "A2C",
    "DQN",
    "PPO",
    "AbstractAlgorithm",
    "AbstractOnPolicyAlgorithm",
    "ActorCriticExtras",
    "Batch",
    "DQNState",
    "DivergenceWarning",
    "OnPolicyState",
    "Rollout",
    "TrainingInterrupted",
    "grid",
]
