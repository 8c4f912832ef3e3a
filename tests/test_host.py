"""`lerax.callback.host`: host calls from jitted code arrive whole, typed and in order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lerax import host


class Recorder:
    def __init__(self):
        self.calls = []

    def record(self, *args, label):
        self.calls.append((label, args))


def test_arguments_of_every_dtype_arrive_intact_and_stay_valid():
    recorder = Recorder()
    handle = host.register(recorder)

    @jax.jit
    def run(x):
        token = host.call(
            "record",
            handle,
            x,
            jnp.arange(6, dtype=jnp.int32).reshape(2, 3) * 2**28,
            x > 0,
            jnp.asarray(7, jnp.uint8),
            x[:2] + 1j * x[2:],
            jnp.zeros((0, 3)),
            label="first",
        )
        host.call("record", handle, x * 2, after=token, label="second")
        return x

    x = jnp.asarray([-1.5, 0.0, jnp.inf, jnp.nan], jnp.float32)
    jax.block_until_ready(run(x))
    jax.effects_barrier()
    # A second call must not change the values the first one delivered.
    jax.block_until_ready(run(x + 1))
    jax.effects_barrier()

    labels = [label for label, _ in recorder.calls]
    assert labels == ["first", "second", "first", "second"]
    floats, ints, flags, small, complexes, empty = recorder.calls[0][1]
    np.testing.assert_array_equal(floats, [-1.5, 0.0, np.inf, np.nan])
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(ints, np.arange(6).reshape(2, 3) * 2**28)
    assert ints.dtype == np.int32 and ints.shape == (2, 3)
    np.testing.assert_array_equal(flags, [False, False, True, False])
    assert flags.dtype == np.bool_
    assert small == 7 and small.dtype == np.uint8 and small.shape == ()
    np.testing.assert_array_equal(complexes, [-1.5 + 1j * np.inf, 0.0 + 1j * np.nan])
    assert complexes.dtype == np.complex64
    assert empty.shape == (0, 3)
    assert all(value.flags.aligned for value in recorder.calls[0][1])
    np.testing.assert_array_equal(recorder.calls[1][1][0], [-3.0, 0.0, np.inf, np.nan])
    np.testing.assert_array_equal(recorder.calls[2][1][0], [-0.5, 1.0, np.inf, np.nan])


def test_ask_returns_what_the_host_answers_at_run_time():
    answers = iter([3, 5, 8])

    @jax.jit
    def run():
        def body(total, _):
            return total + host.ask(lambda: next(answers), jnp.int32), None

        return jax.lax.scan(body, jnp.zeros((), jnp.int32), length=3)[0]

    assert int(run()) == 16  # asked each time, not once while tracing


def test_ask_under_vmap_answers_once_for_the_batch():
    asked = []

    def question():
        asked.append(1)
        return True

    answers = jax.jit(jax.vmap(lambda x: x & host.ask(question, jnp.bool_)))(
        jnp.asarray([True, False, True])
    )
    np.testing.assert_array_equal(answers, [True, False, True])
    assert len(asked) == 1


@pytest.fixture(params=["buffer_callback", "io_callback"])
def either_path(request, monkeypatch):
    """Run a test through both host-call paths: CPU's and other backends'."""
    if request.param == "io_callback":
        monkeypatch.setattr(host, "_buffers_reach_numpy", lambda: False)
    return request.param


def test_calls_under_vmap_run_per_element_in_order_on_either_path(either_path):
    recorder = Recorder()
    handle = host.register(recorder)

    @jax.jit
    @jax.vmap
    def run(x):
        token = host.call("record", handle, x, label="first")
        host.call("record", handle, x * 10, after=token, label="second")
        return host.ask(lambda: 7, jnp.int32) + x

    out = run(jnp.arange(3, dtype=jnp.int32))
    jax.effects_barrier()
    np.testing.assert_array_equal(out, [7, 8, 9])
    firsts = [int(args[0]) for label, args in recorder.calls if label == "first"]
    seconds = [int(args[0]) for label, args in recorder.calls if label == "second"]
    assert firsts == [0, 1, 2] and seconds == [0, 10, 20]
    assert [label for label, _ in recorder.calls][:3] == ["first"] * 3
