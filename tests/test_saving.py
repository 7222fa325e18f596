"""Saving, loading, exporting and converting models that hold the layer."""

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

DATA = pathlib.Path(__file__).with_name("data")
ROOT = pathlib.Path(__file__).parents[1]


def lrn_model(rng, mode, data_format="channels_last"):
    """Conv2D -> LRN(size=3, alpha=1e-2). The convolution's weights are
    seeded multiples of 1/64 and its inputs integers (`model_input`), so
    every product and partial sum is exact in float32, whatever order a
    runtime sums in: outputs differ only by LRN's own rounding."""
    shape = (6, 6, 3) if data_format == "channels_last" else (3, 6, 6)
    inputs = keras.Input(shape)
    convolution = keras.layers.Conv2D(8, 3, padding="same",
                                      data_format=data_format)
    outputs = keras_lrn.LRN(size=3, alpha=1e-2, mode=mode,
                            data_format=data_format)(convolution(inputs))
    convolution.set_weights([rng.integers(-64, 65, w.shape) / 64
                             for w in convolution.get_weights()])
    return keras.Model(inputs, outputs)


def lrn_model_features(model, x):
    """The convolution of `lrn_model`, in float64 from its weights."""
    kernel, bias = (keras.ops.convert_to_numpy(w).astype(np.float64)
                    for w in model.layers[1].weights)
    height, width = x.shape[1:3]
    padded = np.pad(x.astype(np.float64), [(0, 0), (1, 1), (1, 1), (0, 0)])
    return bias + sum(padded[:, i:i + height, j:j + width] @ kernel[i, j]
                      for i in range(3) for j in range(3))


def run_python(code, **env):
    """Runs `code` in a fresh interpreter; returns its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def model_input(rng, shape=(2, 6, 6, 3)):
    """Pixel values 0..255, whole numbers (see `lrn_model`)."""
    return rng.integers(0, 256, shape).astype("float32")


@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_keras_file_loads_in_a_fresh_process_safely(rng, tmp_path, mode):
    model = lrn_model(rng, mode)
    x = model_input(rng)
    path = tmp_path / "model.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    run_python(f"""
        import keras, numpy as np
        import keras_lrn
        model = keras.models.load_model({str(path)!r}, safe_mode=True)
        np.save({str(tmp_path / 'y.npy')!r},
                keras.ops.convert_to_numpy(model(np.load({str(tmp_path / 'x.npy')!r}))))
    """)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"),
                               keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-6)


def test_legacy_h5_round_trip(rng, tmp_path):
    pytest.importorskip("h5py")
    model = lrn_model(rng, "across_channels")
    x = model_input(rng)
    path = tmp_path / "model.h5"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[-1], keras_lrn.LRN)
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-6)


# every argument away from its default; size 4 with the extra element
# before the centre gives other outputs than either default would
NON_DEFAULT_ARGUMENTS = dict(
    size=4, alpha=2e-2, beta=0.6, bias=1.5, mode="within_channel",
    data_format="channels_first", even_window_side="before",
)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_every_non_default_argument_survives_saving(rng, tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    inputs = keras.Input((3, 5, 6))
    outputs = keras_lrn.LRN(**NON_DEFAULT_ARGUMENTS,
                            implementation="portable", dtype="float16",
                            name="custom_lrn")(inputs)
    path = tmp_path / f"model{suffix}"
    keras.Model(inputs, outputs).save(path)
    loaded = keras.models.load_model(
        path, **({"safe_mode": True} if suffix == ".keras" else {}))
    layer = loaded.get_layer("custom_lrn")
    config = layer.get_config()
    for key, value in NON_DEFAULT_ARGUMENTS.items():
        assert config[key] == value, key
    assert config["implementation"] == "portable"
    assert layer.compute_dtype == "float16"
    x = rng.uniform(0, 30, (2, 3, 5, 6)).astype("float32")
    y = keras.ops.convert_to_numpy(loaded(x))
    assert y.dtype == np.float16
    reference.assert_matches_in_dtype(
        y, reference.lrn(x, **NON_DEFAULT_ARGUMENTS), "float16")


def test_first_release_file_still_loads_and_matches_the_formula(rng):
    # lrn_v0_1_0.keras was written by tests/data/save_release_model.py with
    # keras-lrn 0.1.0. Later releases must load it unchanged; arguments
    # added since then take their defaults.
    model = keras.models.load_model(DATA / "lrn_v0_1_0.keras", safe_mode=True)
    layers = {layer.name: layer for layer in model.layers}
    kernel, bias = (keras.ops.convert_to_numpy(w).astype(np.float64)
                    for w in layers["pointwise"].weights)
    x = rng.uniform(-10, 10, (3, 6, 6, 4)).astype("float32")
    expected = x.astype(np.float64) @ kernel[0, 0] + bias  # a 1x1 conv
    expected = reference.lrn(expected, 5, 1e-2, 0.75, 2.0)
    expected = reference.lrn(expected, 3, 2e-2, 0.5, 1.0,
                             mode="within_channel")
    expected = reference.lrn(expected, 4, 1e-2, 1.0, 1.0,
                             even_window_side="before")
    assert layers["torch_even"].implementation == "auto"
    # atol: the float32 convolution's own rounding, seen where x @ W + b
    # cancels to near zero
    # [x]: the saved model's inputs are a list of one
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model([x])),
                               expected, rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow  # SavedModel and TFLite need the TensorFlow backend
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_saved_model_serves_without_keras_lrn(rng, tmp_path, mode):
    model = lrn_model(rng, mode)
    x = model_input(rng)
    model.export(tmp_path / "saved_model")
    np.save(tmp_path / "x.npy", x)
    run_python(f"""
        import sys
        sys.modules["keras_lrn"] = None  # importing it now fails
        import numpy as np, tensorflow as tf
        try:
            import keras_lrn
        except ImportError:
            pass
        else:
            raise SystemExit("keras_lrn was importable")
        served = tf.saved_model.load({str(tmp_path / 'saved_model')!r})
        signature = served.signatures["serving_default"]
        (y,) = signature(tf.constant(np.load({str(tmp_path / 'x.npy')!r}))).values()
        np.save({str(tmp_path / 'y.npy')!r}, y.numpy())
    """)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"),
                               keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-5)


@pytest.mark.tensorflow  # SavedModel and TFLite need the TensorFlow backend
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_tflite_conversion_gives_the_same_outputs(rng, tmp_path, mode):
    import tensorflow as tf

    model = lrn_model(rng, mode)
    x = model_input(rng, (1, 6, 6, 3))
    model.export(tmp_path / "saved_model")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(tmp_path / "saved_model"))
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    (input_detail,) = interpreter.get_input_details()
    (output_detail,) = interpreter.get_output_details()
    interpreter.set_tensor(input_detail["index"], x)
    interpreter.invoke()
    tflite_y = interpreter.get_tensor(output_detail["index"])
    features = lrn_model_features(model, x)  # exact in float32 too
    expected = reference.lrn(features, 3, 1e-2, 0.75, 2.0, mode=mode)
    eps = np.finfo(np.float32).eps
    # ours rounds a few times in float32: the sum of squares, the power,
    # the product
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               expected, rtol=8 * eps)
    error = np.abs(tflite_y - expected)
    if mode == "across_channels":
        # TFLite's LRN kernel accumulates the squares over all of a pixel's
        # channels, so its error in t = bias + alpha * sum is relative to
        # the sum over every channel, not the window's (measured: 470 ulp
        # on the last channel, 1.5 eps * beta * alpha * sum_all x^2 / t)
        t = 2.0 + 1e-2 * reference.window_sum(features**2, 3)
        accumulated = 0.75 * 1e-2 * np.sum(features**2, -1, keepdims=True) / t
        assert np.all(error <= 8 * eps * (1 + accumulated) * np.abs(expected))
    else:  # the portable ops, as ours
        assert np.all(error <= 8 * eps * np.abs(expected))
