"""Property-based tests: the layer and the op against the float64 formula
(tests/reference.py) over random sizes, hyperparameters, shapes, ranks,
layouts, modes, dtypes, implementations and compilation contexts.

Hypothesis draws the cases; `derandomize=True` makes every run draw the
same ones, so CI cannot flake, and a failure prints the case to replay.
Values stay where the formula is finite in the dtype: bias >= 1e-3 (and
bias ** -beta within float16 for float16 layers), alpha <= 1e3, inputs
whose squares do not overflow float32.
"""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_lrn
from tests import reference

BACKEND = keras.backend.backend()
# derandomized: every run draws the same cases; the gradient's cases cost
# more (two autodiff passes, compiled on JAX), so it draws fewer
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None,
                             derandomize=True)
GRADIENT_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=25)


# float64 on JAX for the whole module: Hypothesis's @given tests take no
# function-scoped fixtures
pytestmark = pytest.mark.usefixtures("float64_for_module")


def contexts():
    """Each backend's ways of running a function: eagerly, traced into a
    graph, compiled."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return {"eager": lambda f: f, "tf.function": tf.function,
                "xla": lambda f: tf.function(f, jit_compile=True)}
    if BACKEND == "jax":
        import jax

        return {"eager": lambda f: f, "jit": jax.jit}
    return {"eager": lambda f: f}


CONTEXTS = contexts()


@st.composite
def cases(draw, dtypes=tuple(reference.NUMPY_DTYPES)):
    """One call: the layer's arguments, the input and how it is run."""
    rank = draw(st.sampled_from([3, 4, 5]))
    mode = draw(st.sampled_from(["across_channels", "within_channel"]))
    data_format = draw(st.sampled_from(["channels_last", "channels_first"]))
    spatial = draw(st.lists(st.integers(1, 5 if rank < 5 else 3),
                            min_size=rank - 2, max_size=rank - 2))
    channels = draw(st.integers(1, 7))
    batch = draw(st.integers(1, 2))
    shape = ((batch, *spatial, channels) if data_format == "channels_last"
             else (batch, channels, *spatial))
    arguments = dict(
        size=draw(st.integers(1, 6)),
        # log-uniform over [1e-4, 1e3], sometimes 0 (y = x / bias ** beta)
        alpha=draw(st.floats(-4.5, 3).map(
            lambda e: 0.0 if e < -4 else 10.0**e)),
        # the fast paths (rsqrt, rsqrt * sqrt(rsqrt), reciprocal) and pow
        beta=draw(st.sampled_from([0.5, 0.75, 1.0]) | st.floats(0.0, 2.0)),
        bias=draw(st.floats(-3, 1).map(lambda e: 10.0**e)),
        mode=mode,
        data_format=data_format,
        even_window_side=draw(st.sampled_from(["after", "before"])),
    )
    dtype = draw(st.sampled_from(dtypes))
    if dtype == "float16" and arguments["beta"] > 0:
        # a float16 layer's largest scale, bias ** -beta, stays within
        # float16 (the value gate's bound, max / 2; here with room to spare)
        arguments["bias"] = max(arguments["bias"], (
            float(np.finfo(np.float16).max) / 4) ** (-1 / arguments["beta"]))
    # magnitudes from 1e-2 to ~300: squares above float16's maximum too
    scale = 10.0 ** draw(st.floats(-2, 2.5))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).uniform(-scale, scale, shape)
    x = x.astype(reference.NUMPY_DTYPES[dtype])
    return dict(arguments=arguments, dtype=dtype, x=x,
                implementation=draw(st.sampled_from(["auto", "portable"])),
                api=draw(st.sampled_from(["layer", "ops"])),
                context=draw(st.sampled_from(sorted(CONTEXTS))))


def lrn_function(case):
    """The layer (in the case's dtype policy) or the op, as x -> y."""
    arguments = dict(case["arguments"], implementation=case["implementation"])
    if case["api"] == "layer":
        return keras_lrn.LocalResponseNormalization(**arguments,
                                                    dtype=case["dtype"])
    return lambda x: keras_lrn.ops.local_response_normalization(x,
                                                                **arguments)


def vector_jacobian_product(function, x, upstream):
    """d sum(function(x) * upstream) / dx through the backend's autodiff."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        return tape.gradient(y, x, output_gradients=upstream)
    if BACKEND == "jax":
        import jax

        _, pullback = jax.vjp(function, x)
        return pullback(upstream)[0]
    import torch

    x = x.detach().requires_grad_()
    (gradient,) = torch.autograd.grad(function(x), x, grad_outputs=upstream)
    return gradient


@PROPERTY_SETTINGS
@given(case=cases())
def test_matches_the_formula_in_every_dtype(case):
    x, dtype = case["x"], case["dtype"]
    function = CONTEXTS[case["context"]](lrn_function(case))
    y = function(keras.ops.convert_to_tensor(x, dtype=dtype))
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    # the exact result of the dtype's input, within the dtype's rounding
    reference.assert_matches_in_dtype(
        keras.ops.convert_to_numpy(y).astype(np.float64),
        reference.lrn(x.astype(np.float64), **case["arguments"]), dtype)


@GRADIENT_SETTINGS
@given(case=cases(dtypes=("float32", "float64")),
       seed=st.integers(0, 2**32 - 1))
def test_gradient_matches_autodiff_of_the_formula(case, seed):
    x, dtype, arguments = case["x"], case["dtype"], case["arguments"]
    upstream = np.random.default_rng(seed).normal(size=x.shape)
    function = lrn_function(case)
    actual = CONTEXTS[case["context"]](
        lambda t, u: vector_jacobian_product(function, t, u))(
        keras.ops.convert_to_tensor(x, dtype=dtype),
        keras.ops.convert_to_tensor(upstream, dtype=dtype))
    assert keras.backend.standardize_dtype(actual.dtype) == dtype
    # the same input and upstream, differentiated in float64
    expected = keras.ops.convert_to_numpy(vector_jacobian_product(
        lambda t: reference.differentiable_lrn(t, **arguments),
        keras.ops.convert_to_tensor(x.astype(np.float64)),
        keras.ops.convert_to_tensor(
            upstream.astype(dtype).astype(np.float64))))
    # dx_j = g_j s_j - 2 alpha beta x_j sum_{i: j in window(i)} g_i x_i
    # s_i / t_i, with s = t ** -beta and t = bias + alpha * window_sum(x^2).
    # Each term of the sum is at most 2 beta |g_i| s_i (alpha |x_i x_j| <=
    # t_i), and each is rounded a few times in the dtype: the error bound
    # is relative to the terms, not to dx_j, where they cancel.
    window = {k: arguments[k] for k in ("size", "mode", "data_format")}
    other_side = {"after": "before", "before": "after"}
    t = arguments["bias"] + arguments["alpha"] * reference.window_sum(
        x.astype(np.float64) ** 2, **window,
        even_window_side=arguments["even_window_side"])
    scaled = np.abs(upstream.astype(dtype).astype(np.float64)) * t ** (
        -arguments["beta"])
    terms = scaled + 2 * arguments["beta"] * reference.window_sum(
        scaled, **window,
        even_window_side=other_side[arguments["even_window_side"]])
    error = np.abs(keras.ops.convert_to_numpy(actual).astype(np.float64)
                   - expected)
    bound = 64 * float(np.finfo(dtype).eps) * terms
    assert np.all(error <= bound), np.max(error / bound)
