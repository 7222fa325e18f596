"""Every float dtype, in eager mode, tf.function and XLA, on every path."""

import numpy as np
import pytest

import keras_lrn
from tests import reference

tf = pytest.importorskip("tensorflow")
# the contexts here are TensorFlow's (eager, tf.function, XLA)
pytestmark = pytest.mark.tensorflow

CONTEXTS = {
    "eager": lambda f: f,
    "tf.function": lambda f: tf.function(f),
    "xla": lambda f: tf.function(f, jit_compile=True),
}


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("dtype", reference.NUMPY_DTYPES)
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_ops_in_every_dtype_and_context(rng, context, dtype, mode):
    x = rng.uniform(-40, 40, (2, 6, 5, 9)).astype(reference.NUMPY_DTYPES[dtype])
    kwargs = dict(size=5, alpha=1e-3, beta=0.75, bias=2.0, mode=mode)
    expected = reference.lrn(x.astype(np.float64), **kwargs)
    function = CONTEXTS[context](
        lambda t: keras_lrn.ops.local_response_normalization(t, **kwargs))
    y = function(tf.constant(x))
    assert y.dtype == tf.as_dtype(dtype)
    reference.assert_matches_in_dtype(y.numpy(), expected, dtype)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("dtype", reference.NUMPY_DTYPES)
def test_layer_computes_in_its_policy_dtype(rng, context, dtype):
    x = rng.uniform(-40, 40, (2, 4, 4, 8)).astype(np.float32)
    layer = keras_lrn.LRN(size=3, alpha=1e-3, dtype=dtype)
    # a half-precision layer computes from the float32 input as given and
    # rounds once (issue 26), the others from the input cast to their dtype
    expected = reference.lrn(x.astype(np.float64), size=3, alpha=1e-3,
                             beta=0.75, bias=2.0)
    y = CONTEXTS[context](layer)(tf.constant(x))
    assert y.dtype == tf.as_dtype(dtype)
    reference.assert_matches_in_dtype(y.numpy(), expected, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("context", CONTEXTS)
def test_native_path_in_every_dtype_and_context(rng, dtype, context):
    # The native op runs in float32 even for half inputs: its float16
    # kernel returns 0 or NaN above ~200, and XLA fails to compile it in
    # float16 (openxla/xla#43450).
    x = rng.uniform(0, 300, (2, 5, 5, 10)).astype(reference.NUMPY_DTYPES[dtype])
    kwargs = dict(size=5, alpha=1e-4, beta=0.75, bias=2.0)
    function = CONTEXTS[context](
        lambda t: keras_lrn.ops.local_response_normalization(
            t, implementation="native", **kwargs))
    y = function(tf.constant(x))
    assert y.dtype == tf.as_dtype(dtype)
    reference.assert_matches_in_dtype(y.numpy(),
                            reference.lrn(x.astype(np.float64), **kwargs),
                            dtype)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_float16_activations_whose_squares_overflow(context, mode):
    # 300 ** 2 = 90000 > float16's max 65504: the sum is taken in float32
    # (TensorFlow's own float16 kernel returned 0 or NaN here in 2.21), and
    # the result is the exact one rounded to float16.
    x = np.full((1, 4, 4, 6), 300.0, np.float16)
    kwargs = dict(size=5, alpha=1e-4, beta=0.75, bias=2.0, mode=mode)
    y = CONTEXTS[context](
        lambda t: keras_lrn.ops.local_response_normalization(t, **kwargs)
    )(tf.constant(x)).numpy()
    assert y.dtype == np.float16
    reference.assert_matches_in_dtype(
        y, reference.lrn(x.astype(np.float64), **kwargs), "float16")


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool", "complex64"])
def test_non_float_input_is_rejected_naming_the_dtype(dtype):
    x = np.ones((1, 3, 3, 4)).astype(dtype)
    with pytest.raises(TypeError, match=f"dtype={dtype}"):
        keras_lrn.ops.local_response_normalization(x)
    with pytest.raises(ValueError, match=f"dtype={dtype}"):
        keras_lrn.ops.local_response_normalization(x)


def input_with_nan_and_inf(rng):
    x = rng.uniform(-20, 20, (1, 4, 4, 12)).astype(np.float32)
    x[0, 1, 1, 2] = np.nan
    x[0, 2, 3, 9] = np.inf
    return x


@pytest.mark.parametrize("implementation", ["auto", "portable"])
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_non_finite_inputs_stay_in_their_windows(rng, implementation,
                                                 context, mode):
    x = input_with_nan_and_inf(rng)
    kwargs = dict(size=3, alpha=1e-3, beta=0.75, bias=2.0, mode=mode)
    expected = reference.lrn(x, **kwargs)
    y = CONTEXTS[context](
        lambda t: keras_lrn.ops.local_response_normalization(
            t, implementation=implementation, **kwargs)
    )(tf.constant(x)).numpy()
    # NaN exactly where the formula gives NaN; outputs whose window holds
    # the Inf divide by infinity.
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert np.isnan(expected).sum() < expected.size // 4
    np.testing.assert_allclose(y, expected, rtol=1e-5)


@pytest.mark.parametrize("context", CONTEXTS)
def test_native_path_and_non_finite_inputs(rng, context):
    # Documented in the README: without XLA, TensorFlow's CPU kernel turns
    # the channels of a pixel holding a NaN or Inf into NaN, also outside
    # the window (tensorflow/tensorflow#57746);
    # under XLA the op follows the formula.
    x = input_with_nan_and_inf(rng)
    kwargs = dict(size=3, alpha=1e-3, beta=0.75, bias=2.0)
    expected = reference.lrn(x, **kwargs)
    y = CONTEXTS[context](
        lambda t: keras_lrn.ops.local_response_normalization(
            t, implementation="native", **kwargs)
    )(tf.constant(x)).numpy()
    finite_pixels = np.all(np.isfinite(x), axis=-1)
    np.testing.assert_allclose(y[finite_pixels], expected[finite_pixels],
                               rtol=1e-5)
    if context == "xla":
        np.testing.assert_allclose(y, expected, rtol=1e-5)
    else:
        spread = np.isnan(y) & ~np.isnan(expected)
        assert spread.any() and not spread[finite_pixels].any()
