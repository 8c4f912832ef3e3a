"""`callback=` refuses what would silently run twice."""

import pytest

from lerax.callback import LoggingCallback, make, resolve_callback


@pytest.mark.parametrize(
    "callback", [["alpha", "alpha"], ["alpha", "beta", None, "alpha"], ("beta", "beta")]
)
def test_a_name_given_twice_is_refused(fake_environment, callback):
    with pytest.raises(ValueError, match=r"names '(alpha|beta)' twice"):
        resolve_callback(callback)


def test_the_same_backend_object_twice_is_refused(fake_environment):
    backend = make("alpha")
    with pytest.raises(ValueError, match=r"the same .*Backend object twice"):
        resolve_callback([backend, "beta", backend])


def test_two_backends_built_from_one_name_are_fine(fake_environment):
    logger = resolve_callback([make("alpha"), make("alpha")])
    assert isinstance(logger, LoggingCallback) and len(logger.backends) == 2
    logger.close()
