import contextlib

import keras
import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "gpu: needs a GPU (runs through KERAS_BACKEND=jax there)"
    )
    config.addinivalue_line(
        "markers", "distributed: starts several processes that train "
        "together over loopback ports (tests/test_multiprocess.py)"
    )


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@contextlib.contextmanager
def _float64_on_jax():
    """JAX computes float64 only with `jax_enable_x64`; other backends
    always do."""
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def float64():
    with _float64_on_jax():
        yield


@pytest.fixture(scope="module")
def float64_for_module():
    with _float64_on_jax():
        yield
