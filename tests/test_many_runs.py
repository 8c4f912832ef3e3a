"""Many runs in one `learn`: members, grids, routing, devices and processes."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax.algorithm import DQN, PPO
from lerax.callback import AbstractStatelessCallback
from lerax.env.classic_control import CartPole
from lerax.logging import HostLogger, LoggingCallback
from lerax.policy import MLPActorCriticPolicy, MLPQPolicy
from lerax.testing import RecordingBackend
from lerax.testing.recording import MemberRecordingBackend

ROOT = Path(__file__).resolve().parents[1]


def tiny_ppo(**options) -> PPO:
    return PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1, **options)


def arrays(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def test_a_batch_of_keys_trains_one_member_per_key_as_separate_runs_would(env):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = tiny_ppo()
    keys = jax.random.split(jax.random.key(1), 3)
    total = 3 * algo.steps_per_iteration
    stacked = algo.learn(env, policy, total, key=keys)
    for i, key in enumerate(keys):
        alone = algo.learn(env, policy, total, key=key)
        for mine, theirs in zip(arrays(alone), arrays(stacked), strict=True):
            assert theirs.shape == (3, *mine.shape)
            np.testing.assert_allclose(theirs[i], mine, atol=1e-5)
    first, second = arrays(stacked)[0][0], arrays(stacked)[0][1]
    assert not np.allclose(first, second)  # different keys, different members


def test_a_policy_per_member_starts_each_member_from_its_own_weights(env):
    keys = jax.random.split(jax.random.key(0), 2)
    policies = eqx.filter_vmap(lambda k: MLPActorCriticPolicy(env=env, key=k))(keys)
    algo = tiny_ppo()
    total = algo.steps_per_iteration
    learn_keys = jax.random.split(jax.random.key(1), 2)
    stacked = algo.learn(env, policies, total, key=learn_keys)
    for i in range(2):
        own = MLPActorCriticPolicy(env=env, key=keys[i])
        alone = algo.learn(env, own, total, key=learn_keys[i])
        for mine, theirs in zip(arrays(alone), arrays(stacked), strict=True):
            np.testing.assert_allclose(theirs[i], mine, atol=1e-5)


def test_a_grid_gives_member_i_the_ith_value(env):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    rates = [1e-2, 1e-3]
    keys = jax.random.split(jax.random.key(1), 2)
    grid = tiny_ppo(learning_rate=rates).learn(env, policy, 64, key=keys)
    for i, rate in enumerate(rates):
        alone = tiny_ppo(learning_rate=rate).learn(env, policy, 64, key=keys[i])
        for mine, theirs in zip(arrays(alone), arrays(grid), strict=True):
            np.testing.assert_allclose(theirs[i], mine, atol=1e-5)
    # a one-value sequence is that value for every member
    one = tiny_ppo(learning_rate=[1e-3]).learn(env, policy, 64, key=keys[1])
    same = tiny_ppo(learning_rate=1e-3).learn(env, policy, 64, key=keys[1])
    for a, b in zip(arrays(one), arrays(same), strict=True):
        np.testing.assert_array_equal(a, b)


def test_dqn_trains_a_grid_of_members():
    env = CartPole()
    policy = MLPQPolicy(env=env, key=jax.random.key(0))
    algo = DQN(num_envs=2, num_steps=4, num_updates=1, batch_size=8,
               buffer_size=64, learning_starts=8, learning_rate=[1e-3, 1e-4],
               gamma=[0.9, 0.99])  # fmt: skip
    recorder = MemberRecordingBackend()
    with LoggingCallback([recorder]) as logger:
        trained = algo.learn(env, policy, 5 * algo.steps_per_iteration,
                             key=jax.random.split(jax.random.key(1), 2),
                             callback=logger)  # fmt: skip
    assert arrays(trained)[0].shape[0] == 2
    assert recorder.runs[0].hyperparameters["algorithm/gamma"] == pytest.approx(0.9)
    assert recorder.runs[1].hyperparameters["algorithm/gamma"] == pytest.approx(0.99)
    rates = [
        [row["train/learning_rate"] for _, row in recorder.runs[i].iterations]
        for i in (0, 1)
    ]
    assert rates[0][0] == pytest.approx(1e-3, rel=1e-3)
    assert rates[1][0] == pytest.approx(1e-4, rel=1e-3)


def test_a_single_run_backend_gets_the_aggregate_as_one_run(env):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    single, members = RecordingBackend(), MemberRecordingBackend()
    algo = tiny_ppo(learning_rate=[1e-2, 1e-3, 1e-4])
    keys = jax.random.split(jax.random.key(1), 3)
    with LoggingCallback([single, members], name="three") as logger:
        algo.learn(env, policy, 4 * algo.steps_per_iteration, key=keys,
                   callback=logger)  # fmt: skip
    assert single.events == ["start", *["iteration"] * 4, "end", "close"]
    assert single.run_name == "three"
    assert single.hyperparameters["run/members"] == 3
    assert single.ends == [(128, "completed")]
    for (step, row), i in zip(single.iterations, range(4), strict=True):
        assert step == 32 * (i + 1)
        rows = [members.runs[m].iterations[i][1] for m in range(3)]
        entropy = [r["train/entropy"] for r in rows]
        assert row["train/entropy"] == pytest.approx(np.mean(entropy), rel=1e-5)
        assert "train/entropy_std" not in row  # spread: episode metrics only
        counts = [r["episode/count"] for r in rows]
        assert row["episode/count"] == pytest.approx(np.mean(counts), rel=1e-6)
        assert row["episode/count_std"] == pytest.approx(np.std(counts), rel=1e-5)
        assert row["episode/count_min"] == min(counts)
        assert row["episode/count_max"] == max(counts)
        assert row["members/running"] == 3
        assert "episode/return_mean" not in row  # old names: single runs only
        assert "episode/return_mean" not in rows[0]
    assert members.runs[None].iterations == single.iterations
    assert members.runs[None].group == "three"
    assert [members.runs[m].run_name for m in range(3)] == [
        "three/member-0", "three/member-1", "three/member-2"
    ]  # fmt: skip


class StopMemberOne(AbstractStatelessCallback):
    """Stops member 1 after its second iteration; the others go on."""

    def continue_training(self, ctx, *, key):
        return ~((ctx.member == 1) & (ctx.iteration >= 2))


def three_members_logged(env, *callbacks) -> MemberRecordingBackend:
    """What a member-aware backend receives from 5 iterations of 3 members."""
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    recorder = MemberRecordingBackend()
    algo = tiny_ppo()
    keys = jax.random.split(jax.random.key(1), 3)
    with LoggingCallback([recorder]) as logger:
        algo.learn(env, policy, 5 * algo.steps_per_iteration, key=keys,
                   callback=[*callbacks, logger])  # fmt: skip
    return recorder


def test_a_member_that_stops_early_logs_nothing_stale(env):
    recorder = three_members_logged(env, StopMemberOne())
    steps = [32 * (i + 1) for i in range(5)]
    for member in (0, 2):
        run = recorder.runs[member]
        assert [s for s, _ in run.iterations] == steps
        assert run.ends == [(160, "completed")]
    stopped = recorder.runs[1]
    assert [s for s, _ in stopped.iterations] == [32, 64]
    assert stopped.ends == [(64, "stopped")]
    aggregate = recorder.runs[None]
    assert [s for s, _ in aggregate.iterations] == steps
    running = [row["members/running"] for _, row in aggregate.iterations]
    assert running == [3, 3, 2, 2, 2]
    assert aggregate.ends == [(160, "stopped")]  # members ended differently
    assert [e for e in recorder.events if e[0] == "end"] == [
        ("end", 0), ("end", 1), ("end", 2), ("end", None)
    ]  # fmt: skip


class ReportsSometimes(AbstractStatelessCallback):
    """Reports `custom/value` = iteration + 10 * member from iteration 2 on:
    member 1 at every iteration, the others at odd ones (NaN: not this time)."""

    def reset(self, ctx, *, key):
        zero = jnp.zeros((), jnp.int32)
        return zero, zero

    def on_iteration(self, ctx, *, key):
        return ctx.member, ctx.iteration

    def metrics(self, state):
        member, iteration = state
        due = (iteration >= 2) & ((member == 1) | (iteration % 2 == 1))
        return {"custom/value": jnp.where(due, iteration + 10 * member, jnp.nan)}


def test_the_aggregate_row_has_the_mean_of_what_members_reported(env):
    recorder = three_members_logged(env, ReportsSometimes(), StopMemberOne())
    seen = {
        step // 32: row["custom/value"]
        for step, row in recorder.runs[None].iterations
        if "custom/value" in row
    }
    # 2: member 1 alone; 3 and 5: members 0 and 2 (member 1 stopped at 2 and
    # keeps its last value, which must not count); 1 and 4: no member reported
    assert seen == {2: 12.0, 3: 13.0, 5: 15.0}
    assert not any(  # spread: episode/ and eval/ metrics only
        "custom/value_std" in row for _, row in recorder.runs[None].iterations
    )
    own = [
        (step // 32, row.get("custom/value"))
        for step, row in recorder.runs[1].iterations
    ]
    assert own == [(1, None), (2, 12.0)]


def test_all_members_cross_to_the_host_once_per_iteration(env, monkeypatch):
    crossings = []
    original = HostLogger.iteration

    def counted(self, member, *args, **kwargs):
        crossings.append(len(member))
        return original(self, member, *args, **kwargs)

    monkeypatch.setattr(HostLogger, "iteration", counted)
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = tiny_ppo()
    keys = jax.random.split(jax.random.key(1), 4)
    with LoggingCallback([RecordingBackend()]) as logger:
        algo.learn(env, policy, 3 * algo.steps_per_iteration, key=keys,
                   callback=logger)  # fmt: skip
    # one crossing per iteration (the first carries no row yet) and one at the
    # end, each carrying the four members
    assert crossings == [4, 4, 4, 4]


@pytest.mark.parametrize(
    ("options", "key", "exc", "match"),
    [
        (
            {"learning_rate": [1e-3, 1e-4]},
            3,
            ValueError,
            "2 values but learn was given 3",
        ),
        ({"learning_rate": [1e-3, 1e-4]}, None, ValueError, "one per member"),
        ({"learning_rate": [[1e-3, 1e-4]]}, 2, ValueError, "1-D sequence"),
        ({"learning_rate": ["fast", "slow"]}, 2, TypeError, "must be floats"),
    ],
)
def test_bad_grids_fail_before_compiling(
    env, compile_counter, options, key, exc, match
):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    keys = (
        jax.random.key(1) if key is None else jax.random.split(jax.random.key(1), key)
    )
    with compile_counter() as count, pytest.raises(exc, match=match):
        tiny_ppo(**options).learn(env, policy, 64, key=keys)
    assert count.compiles == 0


@pytest.mark.parametrize("field", ["num_envs", "num_steps", "num_minibatches"])
def test_shape_hyperparameters_cannot_vary(field):
    with pytest.raises(ValueError, match=f"{field}.*cannot vary across members"):
        PPO(**{field: [1, 2]})


def test_devices_need_many_runs_and_real_devices(env, compile_counter):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = tiny_ppo()
    with compile_counter() as count:
        with pytest.raises(ValueError, match="one key per run"):
            algo.learn(env, policy, 64, key=jax.random.key(1), devices=jax.devices())
        with pytest.raises(TypeError, match="list of jax devices"):
            algo.learn(env, policy, 64, key=jax.random.split(jax.random.key(1), 2),
                       devices="cpu")  # fmt: skip
    assert count.compiles == 0


TWO_DEVICES = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np, equinox as eqx
    from lerax.algorithm import PPO
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy
    from lerax.logging import LoggingCallback
    from lerax.testing.recording import MemberRecordingBackend

    assert len(jax.devices()) == 2
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1,
               learning_rate=[1e-2, 3e-3, 1e-3, 3e-4])
    keys = jax.random.split(jax.random.key(1), 4)
    total = 3 * algo.steps_per_iteration
    out = {}
    recorder = MemberRecordingBackend()
    with LoggingCallback([recorder]) as logger:
        sharded = algo.learn(env, policy, total, key=keys, callback=logger)
    leaf = jax.tree.leaves(eqx.filter(sharded, eqx.is_array))[0]
    out["sharding"] = str(leaf.sharding.spec)
    out["runs"] = {str(k): [s for s, _ in r.iterations] for k, r in recorder.runs.items()}
    one = algo.learn(env, policy, total, key=keys, devices=jax.devices()[:1])
    out["difference"] = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(jax.tree.leaves(eqx.filter(sharded, eqx.is_array)),
                        jax.tree.leaves(eqx.filter(one, eqx.is_array)))
    )
    try:
        PPO(num_envs=2, num_steps=16).learn(
            env, policy, 32, key=jax.random.split(jax.random.key(1), 3),
            devices=jax.devices())
    except ValueError as error:
        out["uneven"] = str(error)
    three = PPO(num_envs=2, num_steps=16).learn(
        env, policy, 32, key=jax.random.split(jax.random.key(1), 3))
    out["three"] = jax.tree.leaves(eqx.filter(three, eqx.is_array))[0].shape[0]
    print(json.dumps(out))
    """
)


def run_python(script: str, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_members_sharded_over_two_devices_equal_the_one_device_run():
    flags = "--xla_force_host_platform_device_count=2"
    out = json.loads(run_python(TWO_DEVICES, {"XLA_FLAGS": flags}).splitlines()[-1])
    assert "lerax_devices" in out["sharding"]  # the members axis is sharded
    assert out["difference"] < 1e-4
    steps = [32, 64, 96]
    assert out["runs"] == {"None": steps, **{str(i): steps for i in range(4)}}
    assert "3 members cannot be shared evenly by 2 devices" in out["uneven"]
    assert out["three"] == 3  # not a multiple of the devices: one device


EVALUATIONS_ON_TWO_DEVICES = textwrap.dedent(
    """
    import jax
    from lerax.algorithm import PPO
    from lerax.callback import EvalCallback
    from lerax.env import AbstractEnv
    from lerax.env.classic_control import CartPole
    from lerax.policy import MLPActorCriticPolicy

    RESETS = []

    class Counted(AbstractEnv):  # counts evaluation episodes, per member
        inner: CartPole = CartPole()
        observation_space = property(lambda self: self.inner.observation_space)
        action_space = property(lambda self: self.inner.action_space)

        def reset(self, *, key):
            jax.debug.callback(lambda _: RESETS.append(1), jax.random.key_data(key))
            return self.inner.reset(key=key)

        def step(self, state, action, *, key):
            return self.inner.step(state, action, key=key)

    assert len(jax.devices()) == 2
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    algo = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
    evaluation = EvalCallback(Counted(), every=3, episodes=2, max_episode_steps=20)
    algo.learn(env, policy, 9 * algo.steps_per_iteration,
               key=jax.random.split(jax.random.key(1), 4), callback=evaluation)
    jax.effects_barrier()
    print(len(RESETS))
    """
)


@pytest.mark.slow
def test_sharded_members_evaluate_at_evaluation_iterations_only():
    flags = "--xla_force_host_platform_device_count=2"
    out = run_python(EVALUATIONS_ON_TWO_DEVICES, {"XLA_FLAGS": flags})
    # iterations 3, 6 and 9, 2 episodes for each of 4 members (not all 9 iterations)
    assert int(out.splitlines()[-1]) == 3 * 4 * 2


DISTRIBUTED_EXAMPLE = ROOT / "examples" / "many_runs_distributed.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_write_every_member_once_and_one_console(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    coordinator = f"localhost:{free_port()}"
    processes = [
        subprocess.Popen(
            [sys.executable, str(DISTRIBUTED_EXAMPLE), coordinator, "2", str(i)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "JAX_PLATFORMS": "cpu"},
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    (group,) = (tmp_path / "runs").iterdir()  # both processes named it alike
    found = sorted(p.name for p in group.iterdir())
    assert found == ["aggregate", *(f"member-{i}" for i in range(8))]
    for run in found:
        assert len(list((group / run).glob("events*"))) == 1  # one writer per run
        accumulator = EventAccumulator(str(group / run), size_guidance={"scalars": 0})
        accumulator.Reload()
        steps = [e.step for e in accumulator.Scalars("train/entropy")]
        assert steps == [32, 64, 96], run
    console = [
        [line for line in out.splitlines() if "env steps" in line or "done:" in line]
        for out, _ in outputs
    ]
    assert console[0] and not console[1]  # the console: process 0 only
    for index, (out, _) in enumerate(outputs):  # every process has every policy
        assert f"process {index}: policies for 8 members" in out


def test_grid_crosses_values_with_seeds_value_major():
    from lerax.algorithm import grid

    algo, keys = grid(PPO(), jax.random.key(0), seeds=2,
                      learning_rate=[1e-3, 3e-4], gamma=[0.9, 0.99])  # fmt: skip
    assert algo.learning_rate == [1e-3] * 4 + [3e-4] * 4
    assert algo.gamma == [0.9, 0.9, 0.99, 0.99] * 2
    assert keys.shape == (8,)
    data = jax.random.key_data(keys)
    np.testing.assert_array_equal(data[0::2], np.broadcast_to(data[0], (4, 2)))
    assert not np.array_equal(data[0], data[1])
    with pytest.raises(ValueError, match="cannot vary"):
        grid(PPO(), jax.random.key(0), num_envs=[1, 2])
    with pytest.raises(TypeError, match="no hyper-parameter 'lr'"):
        grid(PPO(), jax.random.key(0), lr=[1e-3])


def test_devices_of_another_process_are_refused(env, monkeypatch, compile_counter):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    monkeypatch.setattr(jax, "process_index", lambda: 1)  # as if we were process 1
    with compile_counter() as count, pytest.raises(ValueError, match="process 0"):
        tiny_ppo().learn(env, policy, 64, key=jax.random.split(jax.random.key(1), 2),
                         devices=jax.devices())  # fmt: skip
    assert count.compiles == 0


def test_each_member_keeps_its_own_best_policy(env):
    from lerax.callback import EvalCallback

    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    evaluation = EvalCallback(every=1, episodes=2, max_episode_steps=50)
    algo = tiny_ppo(learning_rate=[1e-2, 1e-4])
    keys = jax.random.split(jax.random.key(1), 2)
    recorder = MemberRecordingBackend()
    with LoggingCallback([recorder]) as logger:
        algo.learn(env, policy, 3 * algo.steps_per_iteration, key=keys,
                   callback=[evaluation, logger])  # fmt: skip
    assert arrays(evaluation.best_policy)[0].shape[0] == 2
    assert len(evaluation.best_return) == 2
    for member in (0, 1):
        returns = [
            row["eval/return_mean"] for _, row in recorder.runs[member].iterations
        ]
        assert evaluation.best_return[member] == pytest.approx(max(returns))


def test_a_reused_logger_names_each_run_anew(env):
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    recorder = MemberRecordingBackend()
    algo = tiny_ppo()
    with LoggingCallback([recorder]) as logger:
        algo.learn(env, policy, 32, key=jax.random.key(1), callback=logger)
        first = logger.host_logger.run_name
        algo.learn(env, policy, 32, key=jax.random.split(jax.random.key(2), 2),
                   callback=logger)  # fmt: skip
        second = logger.host_logger.run_name
    assert first != second  # a new run, not the first one's name again
    assert recorder.runs[None].group == second
    assert recorder.runs[0].run_name == f"{second}/member-0"
