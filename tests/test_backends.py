"""The JAX and PyTorch backends: every float dtype, eager and jit-compiled,
gradients of first and second order, and `.keras` files that move between
backends.

TensorFlow's own contexts and gradients are in test_dtypes.py and
test_gradients.py; test_numerics.py runs on every backend. References: the
float64 NumPy formula (tests/reference.py), finite differences of it, and the
formula written in plain `keras.ops` for autodiff of any order.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

BACKEND = keras.backend.backend()
# TensorFlow's contexts and gradients are in test_dtypes.py and
# test_gradients.py: these run under JAX and PyTorch only

ROOT = pathlib.Path(__file__).parents[1]
BACKENDS = ("tensorflow", "jax", "torch")


def jit(function):
    """The backend's compiler where a test runs one: `jax.jit`; PyTorch
    runs eagerly (its `torch.compile` is exercised by test_layer.py's
    jit_compile training)."""
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    return function


CONTEXTS = {"eager": lambda f: f}
if BACKEND == "jax":
    CONTEXTS["jit"] = jit


def lrn(x, case):
    return keras_lrn.ops.local_response_normalization(x, **case)


def input_for(rng, case, dtype=np.float64):
    shape = (2, 4, 3, 5) if case.get("mode") != "within_channel" else (
        1, 5, 4, 3)
    return rng.uniform(-8, 8, shape).astype(dtype)


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("dtype", reference.NUMPY_DTYPES)
@pytest.mark.parametrize("case", reference.GRADIENT_CASES)
def test_ops_match_formula_in_every_dtype(rng, float64, context, dtype,
                                          case):
    x = input_for(rng, case, np.float32) * 8
    x = x.astype(reference.NUMPY_DTYPES[dtype])
    y = CONTEXTS[context](lambda t: lrn(t, case))(
        keras.ops.convert_to_tensor(x, dtype=dtype))
    assert keras.backend.standardize_dtype(y.dtype) == dtype
    reference.assert_matches_in_dtype(
        keras.ops.convert_to_numpy(y),
        reference.lrn(x.astype(np.float64), **case), dtype)


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("dtype", ["float64", "mixed_float16",
                                   "mixed_bfloat16"])
def test_layer_computes_in_its_policy_dtype(rng, float64, context, dtype):
    case = reference.GRADIENT_CASES[0]
    layer = keras_lrn.LRN(**case, dtype=dtype)
    x = input_for(rng, case, np.float32) * 8
    y = CONTEXTS[context](layer)(keras.ops.convert_to_tensor(
        x, dtype="float64" if dtype == "float64" else "float32"))
    compute_dtype = layer.compute_dtype
    assert keras.backend.standardize_dtype(y.dtype) == compute_dtype
    # a half-precision layer computes from the caller's float32 input (it is
    # not rounded to float16 first) and rounds the result once
    expected = reference.lrn(x.astype(np.float64), **case)
    reference.assert_matches_in_dtype(keras.ops.convert_to_numpy(y), expected,
                                      compute_dtype)


@pytest.mark.jax
@pytest.mark.torch
def test_float16_activations_whose_squares_overflow():
    x = np.full((1, 2, 2, 5), 300.0, np.float16)
    case = dict(size=5, alpha=1e-4, beta=0.75, bias=2.0)
    y = jit(lambda t: lrn(t, case))(keras.ops.convert_to_tensor(x))
    reference.assert_matches_in_dtype(keras.ops.convert_to_numpy(y),
                                      reference.lrn(x, **case), "float16")


def grad(scalar_function):
    """x -> d scalar_function(x) / dx, itself differentiable."""
    if BACKEND == "jax":
        import jax

        return jax.grad(scalar_function)
    import torch

    def gradient(x):
        if not x.requires_grad:
            x = x.detach().requires_grad_()
        (dx,) = torch.autograd.grad(scalar_function(x), x, create_graph=True)
        return dx

    return gradient


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("case", reference.GRADIENT_CASES)
def test_first_order_matches_finite_differences_of_the_formula(
        rng, float64, context, case):
    x = input_for(rng, case)
    upstream = rng.normal(size=x.shape)
    upstream_tensor = keras.ops.convert_to_tensor(upstream)
    gradient = CONTEXTS[context](grad(
        lambda t: keras.ops.sum(lrn(t, case) * upstream_tensor)))(
            keras.ops.convert_to_tensor(x))
    expected = reference.numerical_gradient(
        lambda v: reference.lrn(v, **case), x, upstream)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gradient), expected,
                               rtol=1e-6, atol=1e-8)


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("case", reference.GRADIENT_CASES)
def test_second_order_matches_autodiff_of_the_plain_formula(
        rng, float64, context, case):
    x = keras.ops.convert_to_tensor(input_for(rng, case))
    upstream = keras.ops.convert_to_tensor(rng.normal(size=x.shape))
    direction = keras.ops.convert_to_tensor(rng.normal(size=x.shape))

    def hessian_vector_product(function):
        first = grad(lambda t: keras.ops.sum(function(t) * upstream))
        return grad(lambda t: keras.ops.sum(first(t) * direction))

    actual = CONTEXTS[context](hessian_vector_product(
        lambda t: lrn(t, case)))(x)
    expected = hessian_vector_product(lambda t: reference.differentiable_lrn(t, **case))(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(actual),
                               keras.ops.convert_to_numpy(expected),
                               rtol=1e-9, atol=1e-11)


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_trains_jit_compiled(rng, mode):
    """One compiled training step moves the weights before the layer."""
    inputs = keras.Input((6, 6, 3))
    hidden = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    hidden = keras_lrn.LRN(size=3, alpha=1e-2, mode=mode)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(hidden)))
    model.compile("sgd", "mse", jit_compile=BACKEND == "jax")
    before = keras.ops.convert_to_numpy(model.layers[1].kernel)
    history = model.fit(rng.uniform(0, 5, (8, 6, 6, 3)),
                        rng.normal(size=(8, 2)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(keras.ops.convert_to_numpy(model.layers[1].kernel),
                           before)


@pytest.mark.torch  # torch.compile is PyTorch's
@pytest.mark.parametrize("case", [
    dict(size=5, alpha=1e-2, beta=0.75, bias=2.0),
    dict(size=4, alpha=3e-2, beta=0.6, bias=1.0, even_window_side="before",
         data_format="channels_first"),
    dict(size=3, alpha=1e-2, beta=0.5, bias=2.0, mode="within_channel"),
], ids=["across", "even-before-channels_first", "within"])
def test_torch_compile_traces_without_warnings_or_graph_breaks(
        rng, recwarn, case):
    """Under `torch.compile` (Keras's jit_compile=True on PyTorch) the
    layer, built inside the compiled call, is one graph (`fullgraph=True`
    raises at a graph break), Dynamo
    warns about nothing (it did about the lru_cache of compiled passes),
    a second call of the op compiles nothing (`error_on_recompile`), and
    forward and gradient are exact."""
    import torch

    layer = keras_lrn.LRN(**case)
    x = input_for(rng, case, np.float32) * 4
    upstream = rng.normal(size=x.shape).astype(np.float32)

    def step(compiled):
        # the forward compiled; its backward is compiled by AOTAutograd
        leaf = torch.from_numpy(x).requires_grad_()
        y = compiled(leaf)
        (dx,) = torch.autograd.grad(y, leaf, torch.from_numpy(upstream))
        return y, dx

    # unbuilt: a fixed layer's build() creates nothing and takes no lock
    torch._dynamo.reset()
    y, dx = step(torch.compile(layer, fullgraph=True))
    # the op: a second call compiles nothing (the layer's own second call
    # recompiles for Keras's call-context state, not for LRN)
    compiled = torch.compile(lambda t: lrn(t, case), fullgraph=True)
    step(compiled)
    with torch._dynamo.config.patch(error_on_recompile=True):
        step(compiled)
    assert not [w for w in recwarn if "keras_lrn" in str(w.filename)
                or "lru_cache" in str(w.message)
                or "Dynamo" in str(w.message)], [str(w.message) for w in recwarn]
    reference.assert_matches_in_dtype(
        y.detach().numpy(), reference.lrn(x.astype(np.float64), **case),
        "float32")
    expected = reference.numerical_gradient(
        lambda t: reference.lrn(t, **case), x.astype(np.float64),
        upstream.astype(np.float64))
    np.testing.assert_allclose(dx.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.jax  # JAX's compiled functions
def test_jax_compiles_one_function_per_structure_across_shapes(rng):
    """New spatial or batch sizes reuse the structure's one compiled
    function (which jax.jit specializes per shape, as a plain jax.jit of
    the formula does); a call under an outer jit traces no new one."""
    import jax

    from keras_lrn import _compilation

    _compilation._jax_functions.cache_clear()
    layer = keras_lrn.LRN(size=5, alpha=1e-2)
    for shape in ((1, 4, 4, 8), (2, 5, 3, 8), (3, 7, 7, 8)):
        x = rng.uniform(0, 8, shape).astype(np.float32)
        for function in (layer, jax.jit(layer)):
            reference.assert_matches_in_dtype(
                np.asarray(function(x)),
                reference.lrn(x.astype(np.float64), size=5, alpha=1e-2,
                              beta=0.75, bias=2.0), "float32")
    assert _compilation._jax_functions.cache_info().currsize == 1


# --- .keras files across backends ---------------------------------------------

def run_python(code, backend):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend,
             "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("saved_by", [
    pytest.param(b, marks=pytest.mark.skipif(
        importlib.util.find_spec(b) is None,
        reason=f"{b} is not installed: the file is saved under KERAS_BACKEND={b}"))
    for b in BACKENDS if b != BACKEND])
def test_keras_file_saved_by_another_backend_gives_the_same_outputs(
        rng, tmp_path, saved_by):
    """A model saved under `saved_by` loads here with its outputs, in both
    modes, for an even window and channels_first."""
    x = rng.uniform(0, 50, (2, 6, 6, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    run_python(f"""
        import keras, numpy as np
        import keras_lrn
        keras.utils.set_random_seed(3)
        inputs = keras.Input((6, 6, 3))
        hidden = keras.layers.Conv2D(8, 3, padding="same")(inputs)
        hidden = keras_lrn.LRN(size=5, alpha=1e-3)(hidden)
        hidden = keras_lrn.LRN(size=3, alpha=1e-3, mode="within_channel")(
            hidden)
        hidden = keras_lrn.LRN.from_torch(4, alpha=4e-3)(hidden)
        outputs = keras_lrn.LRN(size=3, alpha=1e-3,
                                data_format="channels_first")(hidden)
        model = keras.Model(inputs, outputs)
        model.save({str(tmp_path / 'model.keras')!r})
        np.save({str(tmp_path / 'y.npy')!r}, keras.ops.convert_to_numpy(
            model(np.load({str(tmp_path / 'x.npy')!r}))))
    """, saved_by)
    model = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               np.load(tmp_path / "y.npy"), rtol=1e-5,
                               atol=1e-6)
