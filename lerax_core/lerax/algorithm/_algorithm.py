"""The algorithm interface: what each algorithm writes, and `learn`, written once."""

import numbers
import warnings
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar
from jax.sharding import Mesh
from jaxtyping import Array, Float, Int, Key, PyTree

from lerax import members
from lerax.algorithm._members import check_keys, gather, mesh_for, split_grid
from lerax.algorithm.rollout import Rollout
from lerax.env._env import AbstractEnv
from lerax.policy._policy import AbstractPolicy

if TYPE_CHECKING:  # pyright cannot see through eqx.AbstractClassVar (pyright#4965)
    from typing import ClassVar as AbstractClassVar
else:
    from equinox import AbstractClassVar

StateT = TypeVar("StateT")


class DivergenceWarning(RuntimeWarning):
    """Training produced NaN or infinite policy parameters."""


def _check_spaces(env: AbstractEnv, policy: AbstractPolicy) -> None:
    for which in ("observation_space", "action_space"):
        env_space, policy_space = getattr(env, which), getattr(policy, which)
        if env_space != policy_space:
            raise ValueError(
                f"The policy was built for another environment: its {which} is "
                f"{policy_space} but {type(env).__name__}'s is {env_space}. Build "
                f"the policy from this env, e.g. "
                f"{type(policy).__name__}(env=env, key=key)."
            )


def _check_total_timesteps(total_timesteps: Any, steps_per_iteration: int, name: str):
    if isinstance(total_timesteps, bool) or not isinstance(
        total_timesteps, numbers.Integral
    ):
        raise TypeError(
            f"total_timesteps must be a positive int, got {total_timesteps!r} "
            f"({type(total_timesteps).__name__})."
        )
    if int(total_timesteps) >= 2**31:
        raise ValueError(
            f"total_timesteps={total_timesteps} is too large: the step counter is "
            f"a 32-bit integer, so ask for fewer than 2**31 steps per learn call "
            f"(call learn again with the returned policy to train longer)."
        )
    if total_timesteps < steps_per_iteration:
        raise ValueError(
            f"total_timesteps={total_timesteps} is less than one iteration of "
            f"{name} ({steps_per_iteration} steps = num_envs x num_steps); ask for "
            f"at least {steps_per_iteration}."
        )


class AbstractAlgorithm(eqx.Module, Generic[StateT]):
    """A training algorithm: an `init`, an `act` and an `update`, run by one loop.

    Every algorithm trains through the same jitted loop (`lerax.algorithm._loop`),
    which owns keys, the parallel environments, every callback hook, early
    stopping, Ctrl-C and the stop reason, so callbacks and logging work the
    same for all of them. An algorithm writes only what is its own, in the pure
    init/update style of optax:

    - `init(env, policy, num_iterations, key=...)`: its state (optimizer
      state, replay buffer, target network, ...), a pytree;
    - `act(policy, state, observation, key=...)`: the action for one
      environment, and any extras its update needs (value, log-probability);
    - `update(policy, state, rollout, key=...)`: learn from one
      [`Rollout`][lerax.algorithm.Rollout] of `num_steps` steps of `num_envs`
      environments; return the policy, the state and a training log with
      the entries `training_log_names` (scalars);
    - `check(env, policy)`: refuse, before anything compiles, an env or
      policy it cannot train.
    """

    num_envs: AbstractVar[int]
    """Parallel environments, stepped together with `vmap`."""
    num_steps: AbstractVar[int]
    """Steps per environment per iteration."""
    training_log_names: AbstractClassVar[tuple[str, ...]]
    """The entries of the training log that `update` returns."""

    @property
    def steps_per_iteration(self) -> int:
        """Environment steps collected per iteration (all parallel envs)."""
        return self.num_envs * self.num_steps

    @abstractmethod
    def check(self, env: AbstractEnv, policy: AbstractPolicy) -> None:
        """Raise a `TypeError` or `ValueError` saying what to change if this
        algorithm cannot train `policy` on `env`."""

    @abstractmethod
    def init(
        self,
        env: AbstractEnv,
        policy: AbstractPolicy,
        num_iterations: Int[Array, ""],
        *,
        key: Key[Array, ""],
    ) -> StateT:
        """The algorithm's state before the first iteration."""

    @abstractmethod
    def act(
        self,
        policy: AbstractPolicy,
        state: StateT,
        observation: Array,
        *,
        key: Key[Array, ""],
    ) -> tuple[Array, PyTree]:
        """The action to take at one environment's `observation`, and extras
        for `update` (stored in `Rollout.extras`)."""

    @abstractmethod
    def update(
        self,
        policy: AbstractPolicy,
        state: StateT,
        rollout: Rollout,
        *,
        key: Key[Array, ""],
    ) -> tuple[AbstractPolicy, StateT, dict[str, Float[Array, ""]]]:
        """Learn from `rollout`: return the policy, the state and the training log."""

    def train(
        self,
        env: AbstractEnv,
        policy: AbstractPolicy,
        callback: Any,
        total_timesteps: int | Int[Array, ""],
        *,
        key: Key[Array, ""],
    ) -> AbstractPolicy:
        """The jitted training loop without `learn`'s checks, e.g. to `vmap` it.

        `callback` must be one [`AbstractCallback`][lerax.callback.AbstractCallback]
        (`resolve_callback` turns names and lists into one).
        """
        from lerax.algorithm._loop import run_loop
        from lerax.algorithm.interrupt import poll_every

        total = jnp.asarray(total_timesteps, jnp.int32)
        result = run_loop(
            self,
            env,
            policy,
            callback,
            total,
            key,
            poll_every=poll_every(self.steps_per_iteration),
        )
        return result.policy

    def learn(
        self,
        env: AbstractEnv,
        policy: AbstractPolicy,
        total_timesteps: int,
        *,
        key: Key[Array, ""] | Key[Array, " n"],
        callback: Any = None,
        stop_on_divergence: bool = True,
        devices: Sequence[Any] | Mesh | None = None,
        resume_from: Any = None,
    ) -> AbstractPolicy:
        """Train `policy` on `env` for `total_timesteps` steps; return the trained policy.

        `callback` is a callback, a logging backend, a registered plugin name
        (`"console"`), a list mixing these, or `None`. Inputs are checked before
        anything compiles. The loop compiles once per set of shapes: calling
        `learn` again with the same kinds of arguments reuses it.

        **Many runs.** With a batch of keys (`jax.random.split(key, 8)`), one
        *member* is trained per key, in one compiled program, and the policies
        come back stacked on a leading axis (as `eqx.filter_vmap` returns
        them). Float hyper-parameters of the algorithm given as sequences (one
        value per key) vary across members. `policy` is where every member
        starts, or a policy per member stacked the same way. With several
        devices the members are sharded over them when their number is a
        multiple of the devices' (`devices=` a list of devices or a
        `jax.sharding.Mesh` chooses); under `jax.distributed` each process
        trains its share. Each member is its own run for logging backends. See
        the "Many runs" guide.

        Ctrl-C (or SIGTERM) ends training within a fraction of a second, at an
        iteration boundary; the callbacks' `on_training_end` runs, then
        `TrainingInterrupted` is raised carrying the policy.

        If an update makes the policy's parameters NaN or infinite, training
        stops there (stop reason `"diverged"`), the last finite policy is
        returned and a `DivergenceWarning` says at which iteration; with
        `stop_on_divergence=False` training goes on and the warning still comes.

        `resume_from`: a directory a
        [`CheckpointCallback`][lerax.callback.CheckpointCallback] wrote to;
        training continues from its latest checkpoint, as if never stopped
        (pass the same env, policy, algorithm, callbacks, `total_timesteps`
        and `key`). Checked before compiling.
        """
        from lerax.algorithm._loop import LoopResult, run_loop
        from lerax.algorithm._members import MemberBatch, run_members
        from lerax.algorithm.interrupt import (
            TrainingInterrupted,
            poll_every,
            run_interruptibly,
        )
        from lerax.algorithm.resume import prepare_run, refuse_for_members
        from lerax.callback.resolve import resolve_callback

        if not isinstance(env, AbstractEnv):
            raise TypeError(f"env must be an AbstractEnv, got {type(env).__name__}.")
        if not isinstance(policy, AbstractPolicy):
            raise TypeError(
                f"policy must be an AbstractPolicy, such as MLPActorCriticPolicy "
                f"or MLPQPolicy, got {type(policy).__name__}."
            )
        _check_spaces(env, policy)
        self.check(env, policy)
        _check_total_timesteps(
            total_timesteps, self.steps_per_iteration, type(self).__name__
        )
        key, num_members = check_keys(key)
        algorithm, varied = split_grid(self, num_members)
        if num_members is None and devices is not None:
            raise ValueError(
                "devices= spreads many runs over devices: give one key per run "
                "(key=jax.random.split(key, n)), or leave devices out."
            )
        mesh = None if num_members is None else mesh_for(num_members, devices)
        if num_members is not None and jax.process_count() > 1:
            members.agree_on_names()
        callback = resolve_callback(callback)
        total = jnp.asarray(total_timesteps, jnp.int32)
        every = poll_every(self.steps_per_iteration)
        if num_members is None:
            initial = prepare_run(self, env, policy, callback, total, key, resume_from)

            def train() -> LoopResult:
                return run_loop(
                    algorithm,
                    env,
                    policy,
                    callback,
                    total,
                    key,
                    poll_every=every,
                    stop_on_divergence=bool(stop_on_divergence),
                    initial=initial,
                )

        else:
            refuse_for_members(callback, resume_from)
            batch = MemberBatch.make(key, varied, policy, env, num_members, mesh)

            def train() -> LoopResult:
                return run_members(
                    algorithm,
                    env,
                    batch.shared_policy,
                    callback,
                    total,
                    batch.dynamic,
                    poll_every=every,
                    stop_on_divergence=bool(stop_on_divergence),
                    mesh=mesh,
                )

        result, signum = run_interruptibly(train)
        if num_members is not None and result is not None:
            result = gather(result)
        assert result is not None
        diverged = np.atleast_1d(np.asarray(result.diverged_at))
        for member, diverged_at in enumerate(diverged.tolist()):
            if diverged_at < 0:
                continue
            what = "stopped there" if stop_on_divergence else "training went on"
            who = type(self).__name__ + (
                "" if num_members is None else f" (member {member})"
            )
            warnings.warn(
                f"{who} diverged at iteration {diverged_at} (step "
                f"{diverged_at * self.steps_per_iteration}): the policy's parameters "
                f"became NaN or infinite; {what}"
                + (
                    ", and the last finite policy is returned."
                    if stop_on_divergence
                    else "."
                ),
                DivergenceWarning,
                stacklevel=2,
            )
        if signum is not None:
            raise TrainingInterrupted(result.policy, signum)
        return result.policy
