"""Gradients of every order on every path, against finite differences of
the float64 formula and against autodiff of an independent plain-TF formula."""

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="uses tf.GradientTape and tf.test.compute_gradient",
)

CONTEXTS = {
    "eager": lambda f: f,
    "tf.function": lambda f: tf.function(f),
    "xla": lambda f: tf.function(f, jit_compile=True),
}

CASES = reference.GRADIENT_CASES


def lrn(x, case, implementation="auto"):
    return keras_lrn.ops.local_response_normalization(
        x, implementation=implementation, **case)


def input_for(rng, case, dtype=np.float64):
    shape = (2, 4, 3, 5) if case.get("mode") != "within_channel" else (
        1, 5, 4, 3)
    return rng.uniform(-8, 8, shape).astype(dtype)


@pytest.mark.parametrize("case", CASES)
def test_first_order_matches_finite_differences(rng, case):
    x = input_for(rng, case)
    theoretical, numerical = tf.test.compute_gradient(
        lambda t: lrn(t, case), [tf.constant(x)], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-7)
    # and against differences of the NumPy formula, not of our code
    upstream = rng.normal(size=x.shape)
    with tf.GradientTape() as tape:
        t = tf.constant(x)
        tape.watch(t)
        y = lrn(t, case)
    gradient = tape.gradient(y, t, output_gradients=tf.constant(upstream))
    expected = reference.numerical_gradient(
        lambda v: reference.lrn(v, **case), x, upstream)
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("rank", [3, 5])
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_first_order_in_other_ranks(rng, rank, mode):
    case = dict(size=3, alpha=1e-2, beta=0.75, bias=1.0, mode=mode)
    x = rng.uniform(-8, 8, (1, 4, 5) if rank == 3 else (1, 3, 3, 2, 4))
    theoretical, numerical = tf.test.compute_gradient(
        lambda t: lrn(t, case), [tf.constant(x)], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-7)


def hessian_vector_product(function, x, upstream, direction):
    """d/dx <d/dx <f(x), upstream>, direction> with nested tapes."""
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = function(x)
        gradient = inner.gradient(y, x, output_gradients=upstream)
        projection = tf.reduce_sum(gradient * direction)
    return gradient, outer.gradient(projection, x)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("case", CASES)
def test_second_order_portable(rng, context, case):
    x = tf.constant(input_for(rng, case))
    upstream = tf.constant(rng.normal(size=x.shape))
    direction = tf.constant(rng.normal(size=x.shape))
    gradient, hvp = CONTEXTS[context](
        lambda v: hessian_vector_product(lambda t: lrn(t, case), v,
                                         upstream, direction))(x)
    expected_gradient, expected_hvp = hessian_vector_product(
        lambda t: reference.differentiable_lrn(t, **case), x, upstream, direction)
    assert hvp is not None
    np.testing.assert_allclose(gradient.numpy(), expected_gradient.numpy(),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hvp.numpy(), expected_hvp.numpy(),
                               rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", CASES[:3])
def test_second_order_matches_finite_differences_of_the_gradient(rng, case):
    x = input_for(rng, case)
    upstream = tf.constant(rng.normal(size=x.shape))

    def gradient(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = lrn(t, case)
        return tape.gradient(y, t, output_gradients=upstream)

    theoretical, numerical = tf.test.compute_gradient(
        gradient, [tf.constant(x)], delta=1e-5)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 1.3])
def test_native_path_gradients_of_first_and_second_order(rng, context, beta):
    # TensorFlow's LRNGrad has no gradient (tensorflow/tensorflow#22825):
    # the native path's own backward must be differentiable.
    case = dict(size=5, alpha=1e-2, beta=beta, bias=2.0)
    x64 = input_for(rng, case)
    x = tf.constant(x64.astype(np.float32))
    upstream = rng.normal(size=x.shape)
    direction = rng.normal(size=x.shape)
    gradient, hvp = CONTEXTS[context](
        lambda v: hessian_vector_product(
            lambda t: lrn(t, case, implementation="native"), v,
            tf.constant(upstream, tf.float32),
            tf.constant(direction, tf.float32)))(x)
    expected_gradient = reference.numerical_gradient(
        lambda v: reference.lrn(v, **case), x.numpy(), upstream)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient,
                               rtol=1e-4, atol=1e-5)
    _, expected_hvp = hessian_vector_product(
        lambda t: reference.differentiable_lrn(t, **case), tf.constant(x.numpy(), tf.float64),
        tf.constant(upstream), tf.constant(direction))
    np.testing.assert_allclose(hvp.numpy(), expected_hvp.numpy(), rtol=1e-4,
                               atol=1e-5)


@pytest.mark.parametrize("implementation", ["auto", "portable", "native"])
def test_zero_input_with_alpha_zero_has_unit_gradient(implementation):
    # TensorFlow's own edge case (lrn_op_test.testGradientsZeroInput).
    x = tf.zeros((1, 2, 2, 4))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = keras_lrn.ops.local_response_normalization(
            x, size=5, alpha=0.0, beta=1.0, bias=1.0,
            implementation=implementation)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), np.ones(x.shape))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_half_precision_gradient_is_the_float32_one_rounded(rng, dtype, mode):
    # squares above float16's maximum: the backward runs in float32 and
    # rounds once, so it is within an ulp of the exact gradient of the
    # half-precision input (a backward in half precision is 100s of ulp off)
    case = dict(size=5, alpha=1e-4, beta=0.75, bias=2.0, mode=mode)
    x_half = tf.cast(rng.uniform(0, 300, (1, 4, 4, 8)), dtype)
    upstream = tf.cast(rng.normal(size=x_half.shape), dtype)
    with tf.GradientTape() as tape:
        tape.watch(x_half)
        y = lrn(x_half, case)
    gradient = tape.gradient(y, x_half, output_gradients=upstream)
    assert gradient.dtype == tf.as_dtype(dtype)
    x64 = tf.cast(x_half, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x64)
        y64 = reference.differentiable_lrn(x64, **case)
    expected = tape.gradient(y64, x64,
                             output_gradients=tf.cast(upstream, tf.float64))
    reference.assert_matches_in_dtype(tf.cast(gradient, tf.float64).numpy(),
                                      expected.numpy(), dtype)
