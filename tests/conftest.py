import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "gpu: needs a GPU (runs through KERAS_BACKEND=jax there)"
    )


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
