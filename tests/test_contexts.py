"""Every layer configuration through every context a user runs it in,
against the float64 formula (tests/reference.py), never against our code.

Configurations: fixed and learned, box and exponential windows, odd and
even sizes (the extra element after and before the centre), across and
within channels. Contexts: eager on every backend; `tf.function`,
`tf.function(jit_compile=True)`, `native_for_export()` and TFLite on
TensorFlow; `jax.jit` on JAX; `torch.compile` on PyTorch;
`model.export(format="onnx")` run in onnxruntime on each backend.

Tolerances come from the dtype: float32 results within `RTOL_ULPS` units
of float32's epsilon (relative) of the exact value; half precision within
one unit in the last place (`reference.assert_matches_in_dtype`).
"""

import importlib.util

import keras
import ml_dtypes
import numpy as np
import pytest

import keras_lrn
from tests import reference

BACKEND = keras.backend.backend()

# name: layer arguments (beta varies so that every power path is reached)
CONFIGURATIONS = {
    "fixed-box-across-odd": dict(size=5, beta=0.75),
    "fixed-box-across-even-after": dict(size=4, beta=0.5),
    "fixed-box-across-even-before": dict(size=4, beta=1.0,
                                         even_window_side="before"),
    "fixed-box-across-odd-channels_first": dict(
        size=3, beta=0.75, data_format="channels_first"),
    "fixed-box-within-odd": dict(size=3, beta=0.6, mode="within_channel"),
    "fixed-box-within-even-before": dict(size=2, beta=0.75,
                                         mode="within_channel",
                                         even_window_side="before"),
    "fixed-exponential": dict(window="exponential", window_scale=1.5,
                              beta=0.75),
    "learned-box-across-odd": dict(size=5, beta=0.75, learnable=True),
    "learned-box-across-even-before": dict(size=4, beta=0.6, learnable=True,
                                           even_window_side="before"),
    "learned-box-within-odd": dict(size=3, beta=0.75, mode="within_channel",
                                   learnable=True),
    "learned-exponential": dict(window="exponential", window_scale=1.5,
                                beta=0.75, learnable=True),
}
COMMON = dict(alpha=1e-2, bias=2.0)
# float32: within this many epsilons, relative (the computation sums a few
# squares and takes one power: a few roundings, each at most one epsilon)
RTOL_ULPS = 64


def arguments(name):
    return dict(COMMON, **CONFIGURATIONS[name])


def input_shape(name):
    if CONFIGURATIONS[name].get("data_format") == "channels_first":
        return (8, 5, 5)
    return (5, 5, 8)


def expected(x, name):
    """The float64 formula for the layer's starting parameters."""
    return reference.layer_lrn(x, **arguments(name))


def assert_exact(actual, x, name, dtype="float32"):
    actual = np.asarray(actual).astype(np.float64)
    exact = expected(np.asarray(x).astype(np.float64), name)
    assert actual.shape == exact.shape
    if dtype in ("float16", "bfloat16"):
        reference.assert_matches_in_dtype(actual, exact, dtype)
    else:
        rtol = RTOL_ULPS * float(ml_dtypes.finfo(
            reference.NUMPY_DTYPES[dtype]).eps)
        np.testing.assert_allclose(actual, exact, rtol=rtol, atol=0)


def sample(rng, name, batch=2, dtype="float32"):
    x = rng.uniform(-20, 20, (batch,) + input_shape(name))
    return x.astype(reference.NUMPY_DTYPES[dtype])


def model_for(name, dtype="float32"):
    policy = f"mixed_{dtype}" if dtype in ("float16", "bfloat16") else dtype
    inputs = keras.Input(input_shape(name), dtype=dtype)
    layer = keras_lrn.LRN(dtype=policy, **arguments(name))
    return keras.Model(inputs, layer(inputs))


def numpy(y):
    return keras.ops.convert_to_numpy(y)


names = pytest.mark.parametrize("name", list(CONFIGURATIONS))
half_and_single = pytest.mark.parametrize(
    "dtype", ["float32", "float16", "bfloat16"])


# --- every backend -----------------------------------------------------------

@names
@half_and_single
def test_eager(rng, name, dtype):
    x = sample(rng, name, dtype=dtype)
    assert_exact(numpy(model_for(name, dtype)(x)), x, name, dtype)


@names
def test_inside_native_for_export(rng, name):
    """The switch changes how TensorFlow traces; on every backend, every
    configuration still computes the formula inside it (traced on
    TensorFlow, eagerly elsewhere)."""
    x = sample(rng, name)
    model = model_for(name)
    with keras_lrn.native_for_export():
        if BACKEND == "tensorflow":
            import tensorflow as tf

            y = tf.function(model)(x)
        else:
            y = model(x)
    assert_exact(numpy(y), x, name)


_EXPORTER = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "torch"}[
    BACKEND]


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None
    or importlib.util.find_spec(_EXPORTER) is None,
    reason=f"needs the package '{_EXPORTER}' and onnxruntime: pip install "
           f"-e \".[test]\"")
@names
def test_onnx_export_in_onnxruntime(rng, tmp_path, name):
    import onnxruntime

    model = model_for(name)
    model(sample(rng, name, batch=1))
    model.export(str(tmp_path / "model.onnx"), format="onnx", verbose=False)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    x = sample(rng, name, batch=3)  # the batch dimension stays dynamic
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    assert_exact(y, x, name)


# --- TensorFlow ----------------------------------------------------------------

@pytest.mark.tensorflow
@names
@pytest.mark.parametrize("jit_compile", [False, True],
                         ids=["tf.function", "xla"])
def test_tf_function(rng, name, jit_compile):
    """Traced as a SavedModel's serving function is: only the channels
    known, batch and spatial lengths not."""
    import tensorflow as tf

    x = sample(rng, name)
    model = model_for(name)
    channels = 1 if arguments(name).get("data_format") == "channels_first" \
        else 3
    shape = [None] * 4
    shape[channels] = x.shape[channels]
    function = tf.function(
        lambda t: model(t), jit_compile=jit_compile,
        input_signature=[tf.TensorSpec(shape, tf.float32)])
    assert_exact(function(tf.constant(x)).numpy(), x, name)


@pytest.mark.tensorflow
@names
def test_xla_in_half_precision(rng, name):
    import tensorflow as tf

    x = sample(rng, name, dtype="float16")
    y = tf.function(model_for(name, "float16"), jit_compile=True)(x)
    assert_exact(y.numpy(), x, name, "float16")


@pytest.mark.tensorflow
@names
def test_tflite_of_the_export_inside_native_for_export(rng, tmp_path, name):
    """The documented TFLite workflow: export inside the switch, convert
    the SavedModel, run it in TFLite's interpreter."""
    import tensorflow as tf

    model = model_for(name)
    with keras_lrn.native_for_export():
        model.export(str(tmp_path / "saved"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(tmp_path / "saved"))
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    x = sample(rng, name, batch=1)
    (detail,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(detail["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert_exact(y, x, name)


# --- JAX -------------------------------------------------------------------------

@pytest.mark.jax
@names
@half_and_single
def test_jax_jit(rng, name, dtype):
    import jax

    x = sample(rng, name, dtype=dtype)
    model = model_for(name, dtype)
    assert_exact(np.asarray(jax.jit(model)(x)), x, name, dtype)


# --- PyTorch ----------------------------------------------------------------------

@pytest.mark.torch
@names
def test_torch_compile(rng, name):
    import torch

    x = sample(rng, name)
    model = model_for(name)
    torch._dynamo.reset()
    # Dynamo and AOTAutograd trace what the kernels see under any backend;
    # "aot_eager" skips Inductor's C++ code generation (minutes on 2 cores
    # for the eleven configurations; test_backends.py compiles with it)
    y = torch.compile(model, backend="aot_eager")(torch.from_numpy(x))
    assert_exact(y.detach().cpu().numpy(), x, name)
