"""The callback lifecycle inside the jitted PPO loop, CallbackList and resolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax.algorithm import PPO
from lerax.callback import (
    AbstractCallback,
    AbstractStatelessCallback,
    CallbackList,
    EmptyCallback,
)
from lerax.env.classic_control import CartPole
from lerax.policy import MLPActorCriticPolicy

NUM_ENVS, NUM_STEPS = 2, 32
# A short time limit so that rollouts see truncations as well as terminations.
MAX_EPISODE_STEPS = 20


@pytest.fixture
def ppo() -> PPO:
    return PPO(num_envs=NUM_ENVS, num_steps=NUM_STEPS, num_epochs=1, num_minibatches=1)


@pytest.fixture
def short_env() -> CartPole:
    return CartPole(max_episode_steps=MAX_EPISODE_STEPS)


@pytest.fixture
def policy(short_env):
    return MLPActorCriticPolicy(env=short_env, key=jax.random.key(0))


def names(events, who="rec"):
    return [event for name, event, _ in events if name == who]


def payloads(events, kind, who="rec"):
    return [p for name, event, p in events if name == who and event == kind]


def expected_sequence(iterations: int) -> list[str]:
    per_iteration = (
        ["step_reset"] * NUM_ENVS
        + ["on_step"] * (NUM_ENVS * NUM_STEPS)
        + ["on_iteration", "continue_training"]
    )
    return ["reset", "training_start", *per_iteration * iterations, "training_end"]


@pytest.mark.parametrize("iterations", [1, 3])
def test_hook_order_and_counts_under_jit(
    ppo, short_env, policy, recording_callback, events, iterations
):
    # A total that is not a multiple of one iteration: the remainder is dropped.
    total = iterations * ppo.steps_per_iteration + ppo.steps_per_iteration // 2
    callback = recording_callback(name="rec", num_steps=NUM_STEPS)
    ppo.learn(short_env, policy, total, key=jax.random.key(1), callback=callback)

    assert names(events) == expected_sequence(iterations)

    # TrainingContext values.
    (start,) = payloads(events, "training_start")
    (end,) = payloads(events, "training_end")
    assert (int(start["iteration"]), int(start["timestep"])) == (0, 0)
    assert int(start["total_timesteps"]) == int(end["total_timesteps"]) == total
    assert int(end["iteration"]) == iterations
    assert int(end["timestep"]) == iterations * ppo.steps_per_iteration

    # IterationContext values, and the step states every iteration saw.
    for i, it in enumerate(payloads(events, "on_iteration"), start=1):
        assert int(it["iteration"]) == i
        assert int(it["timestep"]) == i * NUM_ENVS * NUM_STEPS
        step_state = it["step_state"]
        # One step state per env: made once (by step_reset, after the previous
        # on_iteration), then one on_step per env step.
        np.testing.assert_array_equal(step_state["resets"], np.ones(NUM_ENVS))
        np.testing.assert_array_equal(step_state["steps"], np.full(NUM_ENVS, NUM_STEPS))
        np.testing.assert_array_equal(
            step_state["reset_iteration"], np.full(NUM_ENVS, i - 1)
        )
    for i, cont in enumerate(payloads(events, "continue_training"), start=1):
        assert int(cont["iteration"]) == i
        assert int(cont["state"]["iterations"]) == i  # sees on_iteration's state
    resets = payloads(events, "step_reset")
    for i, reset in enumerate(resets):
        assert int(reset["iterations"]) == i // NUM_ENVS
    # Every env gets its own key in every iteration.
    assert len({r["key"].tobytes() for r in resets}) == len(resets)

    # The integer counters kept in the global state, as seen by the last hook.
    state = end["state"]
    assert int(state["resets"]) == 1
    assert int(state["starts"]) == 1
    assert int(state["iterations"]) == iterations
    assert int(state["ends"]) == 1
    assert int(state["step_resets"]) == iterations * NUM_ENVS
    assert int(state["steps"]) == iterations * NUM_ENVS * NUM_STEPS


def manual_episode_check(iterations_payloads):
    """Replay the recorded steps per env and count episodes by hand.

    Returns the list of `(env, return, length, terminated, truncated)` of every
    finished episode after asserting that each `StepContext` agreed.
    """
    finished = []
    running_return = np.zeros(NUM_ENVS)
    running_length = np.zeros(NUM_ENVS, int)
    for it in iterations_payloads:
        s = it["step_state"]
        for t in range(NUM_STEPS):
            for e in range(NUM_ENVS):
                reward = s["reward"][e, t]
                terminated, truncated = s["terminated"][e, t], s["truncated"][e, t]
                assert reward == 1.0
                assert s["done"][e, t] == (terminated | truncated)
                running_return[e] += reward
                running_length[e] += 1
                # episode_return/length include this step, done or not.
                assert s["episode_return"][e, t] == pytest.approx(running_return[e])
                assert s["episode_length"][e, t] == running_length[e]
                if s["done"][e, t]:
                    finished.append(
                        (e, running_return[e], running_length[e], terminated, truncated)
                    )
                    running_return[e], running_length[e] = 0.0, 0
    return finished


def test_step_context_sees_rewards_done_flags_and_episode_totals(
    ppo, short_env, policy, recording_callback, events
):
    iterations = 4
    callback = recording_callback(name="rec", num_steps=NUM_STEPS)
    ppo.learn(
        short_env,
        policy,
        iterations * ppo.steps_per_iteration,
        key=jax.random.key(2),
        callback=callback,
    )
    finished = manual_episode_check(payloads(events, "on_iteration"))
    # The run must contain both kinds of episode end for this to mean anything.
    assert any(term for *_, term, _ in finished)
    assert any(trunc for *_, trunc in finished)
    for _, ret, length, terminated, truncated in finished:
        assert ret == length  # CartPole pays 1 per step
        assert not (terminated and truncated)
        if truncated:
            assert length == MAX_EPISODE_STEPS
        else:
            assert length <= MAX_EPISODE_STEPS


# --------------------------------------------------------------------------- #
# CallbackList
# --------------------------------------------------------------------------- #


class VectorCallback(AbstractCallback):
    """A member whose states differ in shape and dtype from RecordingCallback's.

    Global state: float32 `[resets, starts, iterations, ends, continue_calls]`
    times 10. Step state: a `(2,)` float vector `[step_resets, on_steps]`.
    Every hook checks at trace time that it received its own state's shape.
    """

    def _host(self, event, state):
        jax.debug.callback(
            lambda s: VECTOR_EVENTS.append((event, np.asarray(s))), state, ordered=True
        )

    def _bump(self, state, index):
        assert state.shape == (5,) and state.dtype == jnp.float32
        return state.at[index].add(10.0)

    def reset(self, ctx, *, key):
        assert ctx.state is None
        state = jnp.zeros(5, jnp.float32).at[0].set(10.0)
        self._host("reset", state)
        return state

    def step_reset(self, ctx, *, key):
        assert ctx.state.shape == (5,)
        return jnp.asarray([1.0, 0.0])

    def on_step(self, ctx, *, key):
        assert ctx.state.shape == (2,)
        return ctx.state.at[1].add(1.0)

    def on_training_start(self, ctx, *, key):
        state = self._bump(ctx.state, 1)
        self._host("training_start", state)
        return state

    def on_iteration(self, ctx, *, key):
        assert ctx.step_state.shape == (NUM_ENVS, 2)
        state = self._bump(ctx.state, 2)
        self._host("on_iteration", state)
        self._host("step_state", ctx.step_state)
        return state

    def continue_training(self, ctx, *, key):
        self._host("continue_training", self._bump(ctx.state, 4))
        return jnp.asarray(True)

    def on_training_end(self, ctx, *, key):
        state = self._bump(ctx.state, 3)
        self._host("training_end", state)
        return state


VECTOR_EVENTS: list = []
STATELESS_ITERATIONS: list[int] = []


class StopAt(AbstractStatelessCallback):
    """A stateless member: overrides only on_iteration and continue_training.

    `stop_at` is an array, so changing it does not recompile the loop.
    """

    stop_at: jax.Array

    def on_iteration(self, ctx, *, key):
        assert ctx.state is None and ctx.step_state is None
        jax.debug.callback(
            lambda i: STATELESS_ITERATIONS.append(int(i)), ctx.iteration, ordered=True
        )
        return ctx.state

    def continue_training(self, ctx, *, key):
        return ctx.iteration < self.stop_at


def test_callback_list_forwards_every_hook_and_keeps_states_apart(
    ppo, short_env, policy, recording_callback, events
):
    """Four members with different states; the stateless one stops training.

    Also covers `AbstractStatelessCallback` (state `None` throughout) and that
    the list stops as soon as any member asks to.
    """
    VECTOR_EVENTS.clear()
    STATELESS_ITERATIONS.clear()
    iterations = 2
    members = [
        recording_callback(name="first", num_steps=NUM_STEPS, record_steps=True),
        VectorCallback(),
        StopAt(stop_at=jnp.asarray(iterations)),
        recording_callback(name="second", num_steps=NUM_STEPS, record_steps=False),
    ]
    callback = CallbackList(members)
    total = 5 * ppo.steps_per_iteration
    ppo.learn(short_env, policy, total, key=jax.random.key(3), callback=callback)

    assert STATELESS_ITERATIONS == list(range(1, iterations + 1))
    # Both recording members saw every hook, in order, and stopped with the list.
    assert names(events, "first") == expected_sequence(iterations)
    assert names(events, "second") == [
        e for e in expected_sequence(iterations) if e != "on_step"
    ]
    # Members run in list order within each hook.
    whole = [(n, e) for n, e, _ in events if e != "on_step"]
    assert whole[:4] == [
        ("first", "reset"),
        ("second", "reset"),
        ("first", "training_start"),
        ("second", "training_start"),
    ]
    for who in ("first", "second"):
        (end,) = payloads(events, "training_end", who)
        assert int(end["iteration"]) == iterations
        assert int(end["total_timesteps"]) == total
        state = end["state"]
        assert int(state["iterations"]) == iterations
        assert int(state["steps"]) == iterations * NUM_ENVS * NUM_STEPS
        assert int(state["step_resets"]) == iterations * NUM_ENVS
        assert int(state["resets"]) == int(state["starts"]) == int(state["ends"]) == 1

    # The vector member got its own (differently shaped) states throughout.
    kinds = [e for e, _ in VECTOR_EVENTS]
    assert kinds == [
        "reset",
        "training_start",
        *["on_iteration", "step_state", "continue_training"] * iterations,
        "training_end",
    ]
    np.testing.assert_array_equal(VECTOR_EVENTS[0][1], [10, 0, 0, 0, 0])
    final = VECTOR_EVENTS[-1][1]
    # continue_training's bump is not kept (that hook cannot change state).
    np.testing.assert_array_equal(final, [10, 10, 10 * iterations, 10, 0])
    for event, value in VECTOR_EVENTS:
        if event == "step_state":
            np.testing.assert_array_equal(
                value, np.tile([1.0, NUM_STEPS], (NUM_ENVS, 1))
            )
        if event == "continue_training":
            assert value[4] == 10  # earlier continue_training bumps were dropped


# --------------------------------------------------------------------------- #
# None, EmptyCallback and resolution
# --------------------------------------------------------------------------- #


def test_none_and_empty_callback_train_identically(ppo, short_env, policy, trees_equal):
    total = 2 * ppo.steps_per_iteration
    with_none = ppo.learn(short_env, policy, total, key=jax.random.key(6))
    with_empty = ppo.learn(
        short_env, policy, total, key=jax.random.key(6), callback=EmptyCallback()
    )
    with_list = ppo.learn(
        short_env, policy, total, key=jax.random.key(6), callback=[EmptyCallback()]
    )
    trees_equal(with_none, with_empty)
    trees_equal(with_none, with_list)
    # Training actually changed the parameters.
    before = np.asarray(policy.critic.layers[-1].weight)
    after = np.asarray(with_none.critic.layers[-1].weight)
    assert not np.array_equal(before, after)


@pytest.mark.parametrize(
    "bad", [42, 3.5, object(), EmptyCallback, [EmptyCallback(), 7]]
)
def test_wrong_callback_type_raises_type_error(ppo, short_env, policy, bad):
    with pytest.raises(TypeError) as info:
        ppo.learn(
            short_env,
            policy,
            ppo.steps_per_iteration,
            key=jax.random.key(7),
            callback=bad,
        )
    message = str(info.value)
    assert "callback" in message
    assert "AbstractCallback" in message and "None" in message
