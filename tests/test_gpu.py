"""The numerics, dtype and gradient checks on a GPU under XLA.

The lent GPU machines have JAX and PyTorch with CUDA but no TensorFlow, so
these run with KERAS_BACKEND=jax (every call jit-compiled by XLA):

    KERAS_BACKEND=jax python -m pytest -m gpu tests/test_gpu.py

They skip on machines without a GPU. `KERAS_LRN_TEST_DEVICE=cpu` runs the
same bodies on JAX's CPU device instead (benchmarks/gpu_check.sh --cpu does,
so that the script is debugged before a GPU is lent).
"""

import os

import numpy as np
import pytest

import keras_lrn
from tests import reference

pytestmark = [pytest.mark.gpu, pytest.mark.jax]

PLATFORM = os.environ.get("KERAS_LRN_TEST_DEVICE", "gpu")


def device():
    """JAX and the device the checks run on (skips without one)."""
    import jax

    try:
        return jax, jax.devices(PLATFORM)[0]
    except RuntimeError:
        pytest.skip(f"needs a GPU: no {PLATFORM} device visible to JAX "
                    "(run `KERAS_BACKEND=jax python -m pytest -m gpu "
                    "tests/test_gpu.py` on a machine with one)")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
@pytest.mark.parametrize("size", [2, 5, 15])
def test_matches_formula_on_gpu_under_xla(rng, dtype, mode, size):
    jax, dev = device()
    x = rng.uniform(-300, 300, (4, 13, 11, 24)).astype(
        reference.NUMPY_DTYPES[dtype])
    kwargs = dict(size=size, alpha=1e-4, beta=0.75, bias=2.0, mode=mode)
    function = jax.jit(
        lambda t: keras_lrn.ops.local_response_normalization(t, **kwargs))
    y = function(jax.device_put(x, dev))
    assert y.dtype == x.dtype
    # half precision: within one unit in the last place, as on the CPU
    reference.assert_matches_in_dtype(
        np.asarray(y), reference.lrn(x.astype(np.float64), **kwargs), dtype)


def input_for(rng, case):
    shape = (2, 4, 3, 5) if case.get("mode") != "within_channel" else (
        1, 5, 4, 3)
    if case.get("data_format") == "channels_first":
        shape = (shape[0], shape[3], shape[1], shape[2])
    return rng.uniform(-8, 8, shape).astype(np.float32)


@pytest.mark.parametrize("case", reference.GRADIENT_CASES)
def test_gradients_of_first_and_second_order_on_gpu_under_xla(rng, case):
    jax, dev = device()
    x = input_for(rng, case)
    upstream = rng.normal(size=x.shape).astype(np.float32)
    direction = rng.normal(size=x.shape).astype(np.float32)

    def loss(function):
        return lambda t: (function(t) * upstream).sum()

    ours = loss(lambda t: keras_lrn.ops.local_response_normalization(
        t, **case))
    formula = loss(lambda t: reference.differentiable_lrn(t, **case))

    def hvp(f):
        return jax.jit(lambda t: jax.jvp(jax.grad(f), (t,), (direction,))[1])

    x_dev = jax.device_put(x, dev)
    gradient = jax.jit(jax.grad(ours))(x_dev)
    expected = reference.numerical_gradient(
        lambda v: reference.lrn(v, **case), x, upstream)
    np.testing.assert_allclose(np.asarray(gradient), expected, rtol=1e-4,
                               atol=1e-5)
    # second order: against autodiff of the plain formula (an independent
    # expression of the same function), on the same device in float32
    expected_hvp = np.asarray(hvp(formula)(x_dev))
    scale = np.max(np.abs(expected_hvp))
    assert scale > 0
    np.testing.assert_allclose(np.asarray(hvp(ours)(x_dev)), expected_hvp,
                               rtol=1e-4, atol=1e-5 * scale)
