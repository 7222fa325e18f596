"""Gradients of every order on every path, against finite differences of
the float64 formula and against autodiff of an independent plain-TF formula.

The first tests run on every backend through the path training takes
there: `loss.backward()` on PyTorch (the layer's own in-place backward;
`torch.autograd.grad(..., create_graph=True)` would take the autodiff
branch instead), `tf.GradientTape` on TensorFlow, `jax.grad` on JAX. The
others use tf.GradientTape and tf.test.compute_gradient (TensorFlow).
"""

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

BACKEND = keras.backend.backend()
if BACKEND == "tensorflow":
    import tensorflow as tf

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


# --- the path training takes, on every backend --------------------------------

# Even windows on both sides of the centre (a backward that forgets to flip
# the window is wrong only for these), odd ones beside them.
TRAINING_CASES = {
    "size2-after": dict(size=2, alpha=3e-2, beta=0.75, bias=1.0),
    "size2-before": dict(size=2, alpha=3e-2, beta=0.75, bias=1.0,
                         even_window_side="before"),
    "size4-after": dict(size=4, alpha=3e-2, beta=0.5, bias=1.0),
    "size4-before": dict(size=4, alpha=3e-2, beta=1.3, bias=1.0,
                         even_window_side="before"),
    "size4-before-channels_first": dict(
        size=4, alpha=3e-2, beta=0.75, bias=1.0, even_window_side="before",
        data_format="channels_first"),
    "size5": dict(size=5, alpha=1e-2, beta=0.75, bias=2.0),
    "within-size2-before": dict(size=2, alpha=1e-2, beta=0.6, bias=1.0,
                                mode="within_channel",
                                even_window_side="before"),
    "within-size4-after": dict(size=4, alpha=1e-2, beta=0.75, bias=1.0,
                               mode="within_channel"),
}
# learned layers: the parameters' gradients too
LEARNED_CASES = {
    "learned-size4-before": dict(size=4, alpha=3e-2, beta=0.75, bias=1.0,
                                 even_window_side="before", learnable=True),
    "learned-size2-after": dict(size=2, alpha=3e-2, beta=0.6, bias=1.0,
                                learnable=True),
    "learned-within-size2-before": dict(
        size=2, alpha=1e-2, beta=0.75, bias=1.0, mode="within_channel",
        even_window_side="before", learnable=True),
    "learned-exponential": dict(alpha=1e-2, beta=0.75, bias=1.0,
                                window="exponential", window_scale=1.5,
                                learnable=True),
}


def training_gradients(layer, x, upstream):
    """d sum(layer(x) * upstream) / d (x, *trainable weights), computed the
    way a training step on this backend computes it."""
    weights = layer.trainable_weights
    if BACKEND == "torch":
        import torch

        leaf = torch.tensor(x, requires_grad=True)
        loss = (layer(leaf) * torch.tensor(upstream)).sum()
        loss.backward()  # not autograd.grad(create_graph=True)
        return [leaf.grad.numpy()] + [
            w.value.grad.detach().numpy() for w in weights]
    if BACKEND == "tensorflow":
        t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            loss = tf.reduce_sum(layer(t) * upstream)
        return [g.numpy() for g in tape.gradient(loss, [t] + weights)]
    import jax

    def loss(x, trainable):
        y, _ = layer.stateless_call(trainable, [], x)
        return keras.ops.sum(y * upstream)

    dx, dweights = jax.grad(loss, argnums=(0, 1))(
        x, [w.value for w in weights])
    return [np.asarray(dx)] + [np.asarray(g) for g in dweights]


def formula(x, case, **values):
    return reference.layer_lrn(x, **dict(case, **values))


def training_input(rng, case):
    if case.get("mode") == "within_channel":
        shape = (1, 5, 4, 3)
    elif case.get("data_format") == "channels_first":
        shape = (2, 6, 3, 2)
    else:
        shape = (2, 3, 2, 6)
    return rng.uniform(-8, 8, shape)


@pytest.mark.parametrize("name", list(TRAINING_CASES) + list(LEARNED_CASES))
def test_training_path_gradient_matches_finite_differences(rng, float64,
                                                           name):
    """float64 on every backend: the gradient with respect to the input,
    and to each learned parameter's weight (its logarithm), against central
    differences of the float64 formula."""
    case = {**TRAINING_CASES, **LEARNED_CASES}[name]
    layer = keras_lrn.LRN(dtype="float64", **case)
    x = training_input(rng, case)
    upstream = rng.normal(size=x.shape)
    layer.build(x.shape)
    names = [w.name for w in layer.trainable_weights]
    assert bool(names) == bool(case.get("learnable")), names
    dx, *dweights = training_gradients(layer, x, upstream)
    expected = reference.numerical_gradient(
        lambda v: formula(v, case), x, upstream)
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-8)
    step = 1e-6
    for weight_name, gradient in zip(names, dweights):
        value = case[weight_name]
        plus, minus = (np.sum(formula(x, case, **{
            weight_name: value * np.exp(s)}) * upstream)
            for s in (step, -step))
        np.testing.assert_allclose(gradient, (plus - minus) / (2 * step),
                                   rtol=1e-6, err_msg=weight_name)


@pytest.mark.tensorflow
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


@pytest.mark.tensorflow
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


@pytest.mark.tensorflow
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


@pytest.mark.tensorflow
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


@pytest.mark.tensorflow
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


@pytest.mark.tensorflow
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


@pytest.mark.tensorflow
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
