import contextlib

import keras
import numpy as np
import pytest

from tests import skips

BACKENDS = ("tensorflow", "jax", "torch")
BACKEND = keras.backend.backend()
# One registered marker per requirement (`pytest --markers` lists them):
# select with -m, e.g. `-m core` (CI's lowest-Keras step) or `-m "not slow"`.
MARKERS = {
    "tensorflow": "runs only under KERAS_BACKEND=tensorflow (deselected, "
                  "and counted, under the other backends)",
    "jax": "runs only under KERAS_BACKEND=jax (deselected, and counted, "
           "under the other backends)",
    "torch": "runs only under KERAS_BACKEND=torch (deselected, and counted, "
             "under the other backends); with `jax`, under either",
    "gpu": "needs a GPU (runs through KERAS_BACKEND=jax there)",
    "slow": "takes tens of seconds (a subprocess or a whole training run)",
    "distributed": "starts several processes that train together over "
                   "loopback ports (tests/test_multiprocess.py)",
    "core": "the layer's core behaviour: what CI checks against the lowest "
            "supported Keras",
    "wheel": "reaches every module and data file the package reads, with no "
             "checkout: what CI runs against the installed wheel",
}


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


# The modules whose tests carry the `core` marker: the layer's and the op's
# numerics (window sums, the formula, compiled kernels, every dtype,
# properties), configuration and argument conventions, groups, contexts,
# saving, gradients, learned parameters (and their weights), hostile inputs,
# the value gate and dispatch. CI runs `-m core` against the lowest
# supported Keras (3.10), so each of these runs there, and none is slow
# (tests/test_skips.py checks that each exists).
CORE_MODULES = {
    "test_numerics", "test_layer", "test_saving", "test_gradients",
    "test_learned", "test_hostile_inputs", "test_dispatch", "test_windows",
    "test_formula", "test_compilation", "test_dtypes", "test_properties",
    "test_conventions", "test_groups", "test_contexts",
    "test_value_gate", "test_learned_weights", "test_arguments",
    "test_operation",
}


# The modules whose tests carry the `wheel` marker (CI runs `-m wheel` from a
# copy of tests/ against the installed wheel).
WHEEL_MODULES = {
    "test_numerics", "test_layer", "test_dispatch", "test_saving",
    "test_legacy", "test_zoo", "test_onnx_wire", "test_onnx_reader",
    "test_onnx_tensors", "test_applications", "test_alexnet", "test_zfnet",
    "test_common", "test_operation",
}


def pytest_collection_modifyitems(config, items):
    """Marks the `core` and `wheel` modules, and deselects the tests of another backend:
    they are not skips (nothing is missing here), CI's run of their backend
    runs them, and the summary counts them."""
    other_backend = []
    for item in items:
        module = (item.module.__name__.rpartition(".")[2]
                  if item.module is not None else None)
        if module in CORE_MODULES:
            item.add_marker(pytest.mark.core)
        if module in WHEEL_MODULES:
            item.add_marker(pytest.mark.wheel)
        wanted = [b for b in BACKENDS if item.get_closest_marker(b)]
        if wanted and BACKEND not in wanted:
            other_backend.append(item)
    if other_backend:
        config.hook.pytest_deselected(items=other_backend)
        items[:] = [item for item in items if item not in other_backend]
        skips.OTHER_BACKEND.extend(item.nodeid for item in other_backend)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        skips.RECORDED.append(skips.reason_of(report))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return  # pytest-xdist's workers: the controller reports
    for line in skips.summary(BACKEND):
        terminalreporter.write_line(line)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return
    unexplained = skips.unexplained(BACKEND)
    if unexplained and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
