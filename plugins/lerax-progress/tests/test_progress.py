"""Tests of lerax-progress: real trainings drawing on real rich consoles."""

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest
from rich.console import Console

from lerax.algorithm import PPO
from lerax.callback import (
    AbstractStatelessCallback,
    CallbackList,
    IterationContext,
    make,
)
from lerax.env.classic_control import CartPole
from lerax.plugin import get_registry
from lerax.policy import MLPActorCriticPolicy
from lerax.testing import RecordingBackend, check_plugin

ALGORITHM = PPO(num_envs=2, num_steps=16, num_epochs=1, num_minibatches=1)
ITERATIONS = 3
TOTAL = ITERATIONS * ALGORITHM.steps_per_iteration
DESCRIPTION = "PPO on CartPole"


def train(callback: Any, total: int = TOTAL) -> None:
    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    ALGORITHM.learn(env, policy, total, key=jax.random.key(1), callback=callback)


def plain_console() -> Console:
    """A console writing to memory, as a file or pipe would: not a terminal."""
    return Console(file=io.StringIO(), width=120)


def bar_lines(text: str) -> list[str]:
    """Every rendering of the bar in `text`, split where each one starts."""
    return [DESCRIPTION + part for part in text.split(DESCRIPTION)[1:]]


def assert_complete(line: str, done: int, total: int) -> None:
    percent = round(100 * done / total)
    assert re.search(rf"\b{percent}%", line), f"no {percent}% in {line!r}"
    assert f"{done}/{total}" in line, f"no {done}/{total} in {line!r}"


class StopAfter(AbstractStatelessCallback):
    """Stop training once `iterations` iterations have run."""

    iterations: int = eqx.field(static=True)

    def continue_training(self, ctx: IterationContext, *, key) -> jax.Array:
        return ctx.iteration < self.iterations


@dataclass
class Counts:
    traces: int = 0
    compiles: int = 0


@contextmanager
def count_compilation() -> Iterator[Counts]:
    """Count jaxpr traces and XLA compilations inside the block."""
    counts = Counts()

    def listener(event: str, duration: float, **kwargs: Any) -> None:
        if event == "/jax/core/compile/jaxpr_trace_duration":
            counts.traces += 1
        elif event == "/jax/core/compile/backend_compile_duration":
            counts.compiles += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


# --------------------------------------------------------------------------- #
# Plugin packaging
# --------------------------------------------------------------------------- #


def test_conformance_and_the_total_timesteps_option():
    console = plain_console()
    options = {"progress": {"console": console, "total_timesteps": 2 * TOTAL}}
    report = check_plugin("progress", options=options)
    assert any(line.startswith("progress:") for line in report.checked)
    # The kit's training drew on the console it was given, against that total.
    lines = bar_lines(console.file.getvalue())
    assert len(lines) == 1
    assert_complete(lines[0], TOTAL, 2 * TOTAL)


def test_registered_as_a_callback_and_importable_from_lerax_callback():
    info = get_registry().plugins["progress"]
    assert info.distribution == "lerax-progress"
    assert [(r.name, r.kind) for r in info.registrations] == [("progress", "callback")]
    assert isinstance(info.registrations[0].factory, str)  # deferred import

    from lerax.callback import ProgressBarCallback
    from lerax_progress.callback import ProgressBarCallback as defined

    assert ProgressBarCallback is defined
    assert isinstance(make("progress"), defined)


def test_plugin_module_imports_nothing_heavy():
    heavy = ["jax", "equinox", "rich", "lerax.callback", "lerax_progress.callback"]
    code = (
        f"import sys, lerax_progress\nprint([m for m in {heavy!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"total_timesteps": 0}, ValueError, "0"),
        ({"total_timesteps": -5}, ValueError, "-5"),
        ({"total_timesteps": "1000"}, TypeError, "'1000'"),
        ({"total_timesteps": True}, TypeError, "True"),
        ({"console": sys.stdout}, TypeError, "Console\\(file=...\\)"),
    ],
)
def test_bad_options_fail_at_construction(options, error, named):
    with pytest.raises(error, match=named):
        make("progress", **options)


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #


def test_terminal_bar_reaches_the_total():
    console = Console(file=io.StringIO(), record=True, force_terminal=True, width=120)
    train(make("progress", console=console))
    written = console.file.getvalue()
    assert "\x1b[" in written  # a terminal: drawn in place with control codes
    lines = bar_lines(console.export_text())
    assert len(lines) >= 2  # the empty bar at start, then at least the final one
    assert_complete(lines[0], 0, TOTAL)
    assert_complete(lines[-1], TOTAL, TOTAL)
    assert "steps/s" in lines[-1]


def test_off_a_terminal_only_the_final_bar_is_printed_as_plain_text():
    console = plain_console()
    train(make("progress", console=console))
    written = console.file.getvalue()
    assert "\x1b" not in written and "\r" not in written
    assert written.count("\n") == 1
    assert_complete(written, TOTAL, TOTAL)


def test_early_stop_ends_the_bar_at_the_step_reached():
    console = plain_console()
    bar = make("progress", console=console)
    train(CallbackList([bar, StopAfter(1)]))
    assert_complete(console.file.getvalue(), ALGORITHM.steps_per_iteration, TOTAL)
    assert bar.host.progress is None  # stopped: the terminal is released


def test_one_host_call_per_iteration_never_per_step():
    names: list[tuple[str, ...]] = []

    def inner(value: Any) -> Iterator[Any]:
        if hasattr(value, "eqns"):
            yield value
        elif hasattr(value, "jaxpr") and hasattr(value, "consts"):
            yield value.jaxpr
        elif isinstance(value, tuple | list):
            for item in value:
                yield from inner(item)

    def walk(jaxpr, path: tuple[str, ...]) -> None:
        for eqn in jaxpr.eqns:
            if "callback" in eqn.primitive.name:
                names.append((*path, eqn.primitive.name))
            for param in eqn.params.values():
                for sub in inner(param):
                    walk(sub, (*path, eqn.primitive.name))

    env = CartPole()
    policy = MLPActorCriticPolicy(env=env, key=jax.random.key(0))
    closed, *_ = eqx.filter_make_jaxpr(ALGORITHM.train)(
        env, policy, make("progress"), jnp.asarray(TOTAL), key=jax.random.key(1)
    )
    walk(closed.jaxpr, ())
    assert all(path[-1] == "buffer_callback" for path in names)
    assert not [path for path in names if "scan" in path]  # nothing in rollouts
    # The loop's own Ctrl-C poll is the one call under a `cond`; the bar's three
    # are at the start, once per iteration of the `while`, and at the end.
    own = [path for path in names if "cond" not in path]
    assert len(names) - len(own) == 1
    assert sorted(path.count("while") for path in own) == [0, 0, 1]


def test_close_removes_a_bar_left_by_a_failed_run():
    bar = make("progress", console=Console(file=io.StringIO(), force_terminal=True))
    # As if a run had raised between its start and its end:
    one = np.ones(1, bool)  # host calls carry a leading axis of members
    bar.host.start(
        np.zeros(1, np.int32),
        np.full(1, 10),
        np.ones(1, np.int32),
        running=one,
        description="interrupted",
    )
    live = bar.host.progress.live
    assert live.is_started
    progress_host = bar.host
    with bar:
        pass
    assert not live.is_started and progress_host.progress is None
    with pytest.raises(LookupError, match="cannot be reused"):
        bar.host  # noqa: B018 (the host side is freed)
    bar.close()  # idempotent


# --------------------------------------------------------------------------- #
# Through learn
# --------------------------------------------------------------------------- #


def test_learn_with_the_name(capsys):
    train("progress")
    lines = bar_lines(capsys.readouterr().out)
    assert len(lines) == 1
    assert_complete(lines[0], TOTAL, TOTAL)


def test_learn_with_the_name_and_a_backend(capsys):
    backend = RecordingBackend()
    train(["progress", backend])
    lines = bar_lines(capsys.readouterr().out)
    assert len(lines) == 1
    assert_complete(lines[0], TOTAL, TOTAL)
    steps = [step for step, _ in backend.iterations]
    assert steps == [ALGORITHM.steps_per_iteration * (i + 1) for i in range(3)]
    assert backend.events[-2:] == ["end", "close"]


def test_a_second_learn_does_not_recompile():
    first, second = plain_console(), plain_console()
    bar = make("progress", console=first)
    train(bar)  # compiled here unless an earlier test did
    with count_compilation() as counts:
        train(bar)  # the same callback
        train(make("progress", console=second))  # a new one, same settings
    assert (counts.traces, counts.compiles) == (0, 0)
    # Each run drew on its own bar's console, although the code was shared.
    for console, runs in ((first, 2), (second, 1)):
        lines = bar_lines(console.file.getvalue())
        assert len(lines) == runs
        for line in lines:
            assert_complete(line, TOTAL, TOTAL)
