"""The numerics, dtype and gradient checks on a GPU under XLA.

The lent GPU machines have JAX and PyTorch with CUDA but no TensorFlow, so
these run with KERAS_BACKEND=jax (every call jit-compiled by XLA):

    KERAS_BACKEND=jax python -m pytest -m gpu tests/test_gpu.py

They skip on machines without a GPU.
"""

import keras
import ml_dtypes
import numpy as np
import pytest

import keras_lrn
from tests import reference

pytestmark = pytest.mark.gpu


def gpu_jax():
    if keras.backend.backend() != "jax":
        pytest.skip("GPU checks run with KERAS_BACKEND=jax")
    import jax

    try:
        jax.devices("gpu")
    except RuntimeError:
        pytest.skip("no GPU visible to JAX")
    return jax


DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
          "float32": np.float32}
BOUNDS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 1e-5}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
@pytest.mark.parametrize("size", [2, 5, 15])
def test_matches_formula_on_gpu_under_xla(rng, dtype, mode, size):
    jax = gpu_jax()
    x = rng.uniform(-300, 300, (4, 13, 11, 24)).astype(DTYPES[dtype])
    kwargs = dict(size=size, alpha=1e-4, beta=0.75, bias=2.0, mode=mode)
    function = jax.jit(
        lambda t: keras_lrn.ops.local_response_normalization(t, **kwargs))
    y = function(jax.device_put(x, jax.devices("gpu")[0]))
    assert y.dtype == x.dtype
    assert np.all(np.isfinite(np.asarray(y, np.float32)))
    np.testing.assert_allclose(np.asarray(y).astype(np.float64),
                               reference.lrn(x.astype(np.float64), **kwargs),
                               rtol=BOUNDS[dtype], atol=0)


@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_gradients_on_gpu_under_xla(rng, mode):
    jax = gpu_jax()
    case = dict(size=3, alpha=1e-2, beta=0.75, bias=2.0, mode=mode)
    x = rng.uniform(-8, 8, (1, 4, 4, 6)).astype(np.float32)
    upstream = rng.normal(size=x.shape).astype(np.float32)

    def loss(t):
        return (keras_lrn.ops.local_response_normalization(t, **case)
                * upstream).sum()

    gradient = jax.jit(jax.grad(loss))(x)
    expected = reference.numerical_gradient(
        lambda v: reference.lrn(v, **case), x, upstream)
    np.testing.assert_allclose(np.asarray(gradient), expected, rtol=1e-4,
                               atol=1e-5)
    direction = rng.normal(size=x.shape).astype(np.float32)
    hvp = jax.jit(lambda t: jax.jvp(jax.grad(loss), (t,), (direction,))[1])(x)
    assert np.all(np.isfinite(np.asarray(hvp)))
