"""Train 8 PPO members over every process of a `jax.distributed` job.

Each process trains its share of the members (a learning-rate grid, two seeds
each) and writes its own members' TensorBoard runs; the console and the
aggregate run come from process 0. On a cluster (SLURM, Open MPI, ...) run one
copy per process with no arguments: `jax.distributed.initialize()` finds the
job's coordinator itself. On one machine, give the coordinator, the number of
processes and this process's index:

    python examples/many_runs_distributed.py localhost:1234 2 0 &
    python examples/many_runs_distributed.py localhost:1234 2 1
"""

import sys

import equinox as eqx
import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes
if len(sys.argv) == 4:
    coordinator, processes, process = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    jax.distributed.initialize(coordinator, num_processes=processes, process_id=process)
else:
    jax.distributed.initialize()

from lerax.algorithm import PPO, grid  # noqa: E402
from lerax.env.classic_control import CartPole  # noqa: E402
from lerax.policy import MLPActorCriticPolicy  # noqa: E402

env = CartPole()
policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
algo, keys = grid(
    PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1),
    jax.random.key(1),
    seeds=2,
    learning_rate=[1e-2, 3e-3, 1e-3, 3e-4],
)
policies = algo.learn(
    env,
    policy,
    3 * algo.steps_per_iteration,
    key=keys,
    callback=["console", "tensorboard"],
)
# Every process holds every member's policy (gathered from all processes).
first_layer = jax.tree.leaves(eqx.filter(policies, eqx.is_array))[0]
print(f"process {jax.process_index()}: policies for {first_layer.shape[0]} members")
jax.distributed.shutdown()
