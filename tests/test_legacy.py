"""Legacy `.h5` files (tf.keras 2) whose LRN is a user's custom layer load
through `keras_lrn.legacy_objects`, on every backend.

References: each convention's formula in float64 NumPy, written here from its
source (TensorFlow's documentation of `local_response_normalization`, and
Keras 0.x's `LRN2D.get_output`), and tf.keras 2 itself where `tf_keras` is
installed.
"""

import importlib.util
import pathlib
import warnings

import keras
import numpy as np
import pytest

import keras_lrn
from keras_lrn import legacy

DATA = pathlib.Path(__file__).with_name("data")
_spec = importlib.util.spec_from_file_location(
    "save_legacy_models", DATA / "save_legacy_models.py")
save_legacy_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(save_legacy_models)

CONVENTIONS = ("tensorflow", "lrn2d")


def tensorflow_formula(x, depth_radius, bias, alpha, beta):
    """tf.nn.local_response_normalization's documented formula (NHWC):
    sqr_sum[a, b, c, d] = sum(input[a, b, c, d - depth_radius : d +
    depth_radius + 1] ** 2); output = input / (bias + alpha * sqr_sum) **
    beta."""
    x = np.asarray(x, np.float64)
    channels = x.shape[-1]
    sqr_sum = np.stack([
        (x[..., max(0, d - depth_radius):d + depth_radius + 1] ** 2).sum(-1)
        for d in range(channels)], axis=-1)
    return x / (bias + alpha * sqr_sum) ** beta


def lrn2d_formula(x, alpha, k, beta, n):
    """Keras 0.x's LRN2D.get_output (NCHW): the squares zero-padded by
    n // 2 channels on each side, scale = k + sum_i alpha * sqr[:, i:i + ch],
    output = x / scale ** beta."""
    x = np.asarray(x, np.float64)
    channels, half_n = x.shape[1], n // 2
    padded = np.pad(x**2, [(0, 0), (half_n, half_n), (0, 0), (0, 0)])
    scale = k + sum(alpha * padded[:, i:i + channels] for i in range(n))
    return x / scale**beta


def formula(convention, x):
    if convention == "tensorflow":
        return tensorflow_formula(x, **save_legacy_models.TENSORFLOW_CONFIG)
    return lrn2d_formula(x, **save_legacy_models.LRN2D_CONFIG)


def load(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No training configuration found"
        return keras.models.load_model(
            path, custom_objects=keras_lrn.legacy_objects(**kwargs))


def lrn_input_and_output(model, x):
    """What the model's LRN layer receives and returns for `x`."""
    layer = model.get_layer("norm1")
    # the model's one input, not a list of it: called with a bare tensor a
    # list-input model warns that the structures differ
    probe = keras.Model(model.inputs[0], [layer.input, layer.output])
    return [keras.ops.convert_to_numpy(t) for t in probe(x)]


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_committed_tf_keras2_file_loads_and_matches_its_formula(convention):
    model = load(DATA / f"legacy_tf_keras2_{convention}.h5")
    layer = model.get_layer("norm1")
    assert isinstance(layer, keras_lrn.LocalResponseNormalization)
    lrn_in, lrn_out = lrn_input_and_output(
        model, save_legacy_models.sample_input(convention))
    np.testing.assert_allclose(lrn_out, formula(convention, lrn_in),
                               rtol=1e-5)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_fresh_tf_keras2_file_gives_tf_keras2s_outputs(convention, tmp_path):
    tf_keras = pytest.importorskip(
        "tf_keras", reason="needs the package 'tf_keras' (it writes Keras 2 "
        "files): pip install --no-deps tf_keras==2.21.0")
    path = tmp_path / "model.h5"
    original = save_legacy_models.save(convention, path)
    x = save_legacy_models.sample_input(convention)
    original_probe = tf_keras.Model(original.inputs,
                                    original.get_layer("norm1").output)
    restored = load(path)
    _, lrn_out = lrn_input_and_output(restored, x)
    np.testing.assert_allclose(lrn_out, original_probe.predict(x, verbose=0),
                               rtol=1e-5)
    expected = original.predict(x, verbose=0)
    np.testing.assert_allclose(  # the Dense after it sums terms of ~10
        keras.ops.convert_to_numpy(restored([x])), expected, rtol=1e-5,
        atol=1e-5 * np.abs(expected).max())


def test_loaded_model_resaves_as_keras_file_without_custom_objects(tmp_path):
    model = load(DATA / "legacy_tf_keras2_lrn2d.h5")
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras",
                                       safe_mode=True)
    x = save_legacy_models.sample_input("lrn2d")
    lrn_in, lrn_out = lrn_input_and_output(restored, x)
    np.testing.assert_allclose(lrn_out, formula("lrn2d", lrn_in), rtol=1e-5)


def test_maps_each_convention_to_the_layer_it_computes():
    tensorflow = legacy.from_legacy_config(
        dict(name="n1", depth_radius=2, bias=1.0, alpha=1e-4, beta=0.75))
    assert (tensorflow.name, tensorflow.size, tensorflow.alpha,
            tensorflow.bias, tensorflow.data_format) == (
                "n1", 5, 1e-4, 1.0, "channels_last")
    lrn2d = legacy.from_legacy_config(dict(alpha=1e-4, k=2, beta=0.75, n=5))
    assert (lrn2d.size, lrn2d.alpha, lrn2d.bias, lrn2d.beta,
            lrn2d.data_format) == (5, 1e-4, 2.0, 0.75, "channels_first")


def test_missing_values_take_each_classs_own_defaults():
    lrn2d = legacy.from_legacy_config({"n": 3})
    assert (lrn2d.alpha, lrn2d.bias, lrn2d.beta) == (1e-4, 2.0, 0.75)
    tensorflow = legacy.from_legacy_config({"depth_radius": 1})
    assert (tensorflow.alpha, tensorflow.bias, tensorflow.beta) == (
        1.0, 1.0, 0.5)


def test_data_format_comes_from_the_config_then_the_argument():
    config = dict(alpha=1e-4, k=2, beta=0.75, n=5)
    assert legacy.from_legacy_config(
        config, data_format="channels_last").data_format == "channels_last"
    assert legacy.from_legacy_config(
        {**config, "data_format": "channels_last"},
        data_format="channels_first").data_format == "channels_last"


def test_keras_lrn_configs_pass_through_unchanged():
    layer = keras_lrn.LRN(size=4, even_window_side="before", alpha=3e-4)
    loaded = legacy.from_legacy_config(layer.get_config())
    assert loaded.get_config() == layer.get_config()


def test_custom_class_names_map_to_the_loader():
    objects = keras_lrn.legacy_objects("Custom>LRN", "LocalResponseNorm")
    assert sorted(objects) == ["Custom>LRN", "LocalResponseNorm"]
    layer = objects["Custom>LRN"](name="n", depth_radius=1, bias=1.0,
                                  alpha=1.0, beta=0.5)
    assert layer.size == 3
    assert sorted(keras_lrn.legacy_objects()) == sorted(
        legacy.LEGACY_CLASS_NAMES)


def test_unknown_config_is_rejected_naming_the_keys():
    with pytest.raises(ValueError, match="depth_radius.*Received: config"):
        legacy.from_legacy_config({"name": "x", "radius": 2})


def test_even_lrn2d_window_is_rejected_naming_n():
    with pytest.raises(ValueError, match="odd `n`.*n=4"):
        legacy.from_legacy_config({"n": 4})


@pytest.mark.parametrize("name", ["", 3])
def test_bad_class_name_is_rejected(name):
    with pytest.raises(ValueError, match="class_names"):
        keras_lrn.legacy_objects(name)


def test_a_config_naming_its_window_twice_is_a_named_conflict():
    with pytest.raises(ValueError, match=r"once.*Received: n=5, "
                                         r"depth_radius=2|Received: "
                                         r"depth_radius=2, n=5"):
        legacy.from_legacy_config({"n": 5, "depth_radius": 2, "alpha": 1e-4})
    with pytest.raises(ValueError, match=r"size=5.*depth_radius=2"):
        legacy.from_legacy_config({"size": 5, "depth_radius": 2})


@pytest.mark.parametrize("key, value", [
    ("learnable", True), ("window", "exponential"), ("window_scale", 2.0),
    ("implementation", "native")])
def test_a_legacy_convention_refuses_keras_lrn_only_keys(key, value):
    for config in ({"depth_radius": 2, key: value}, {"n": 5, key: value}):
        with pytest.raises(ValueError, match=rf"Received: {key}="):
            legacy.from_legacy_config(config)
