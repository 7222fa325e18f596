"""keras_lrn/applications/_common.py: the builders' shared blocks and
argument checks (validate_builder, resolve_input, conv and its towers,
ChannelSlice, weight_layers, norm_layer, global_pool, load_weights).

Grouped convolutions are checked against a convolution written out in
NumPy, one group at a time; messages must quote the bad value."""

import numpy as np
import pytest

import keras

from keras_lrn import LocalResponseNormalization
from keras_lrn.applications import AlexNet
from keras_lrn.applications import _common
from tests.architecture import image_data_format

VALID = dict(weights=None, dropout=0.5, normalization="lrn",
             group_implementation="native", pooling=None, classes=10)


@pytest.mark.parametrize("change, message", [
    (dict(variant="vgg", variants=("a", "b")), "Received: variant='vgg'"),
    (dict(normalization="lcn"), "Received: normalization='lcn'"),
    (dict(group_implementation="magic"),
     "Received: group_implementation='magic'"),
    (dict(pooling="sum"), "Received: pooling='sum'"),
    (dict(classes=0), "Received: classes=0"),
    (dict(classes=True), "Received: classes=True"),
    (dict(classes=2.0), r"Received: classes=2\.0"),
    (dict(dropout=1.0), r"Received: dropout=1\.0"),
    (dict(dropout=-0.1), r"Received: dropout=-0\.1"),
    (dict(weights=3), "Received: weights=3"),
    (dict(weights="zoo.onnx"), "ONNX file.*from_onnx_zoo.*weights='zoo.onnx'"),
    (dict(weights="model.h5"), "downloads nothing.*weights='model.h5'"),
    (dict(weights="imagenet"), "downloads nothing.*weights='imagenet'"),
])
def test_validate_builder_names_the_bad_value(change, message):
    with pytest.raises(ValueError, match=message):
        _common.validate_builder(**dict(VALID, **change))


def test_validate_builder_accepts_its_values_and_an_existing_file(tmp_path):
    for normalization in _common.NORMALIZATIONS:
        for pooling in (None, "avg", "max"):
            _common.validate_builder(**dict(
                VALID, normalization=normalization, pooling=pooling,
                variant="a", variants=("a", "b")))
    path = tmp_path / "model.weights.h5"
    path.write_bytes(b"")
    _common.validate_builder(**dict(VALID, weights=path, dropout=0.0))
    with pytest.raises(ValueError, match="names no file"):
        _common.validate_builder(
            **dict(VALID, weights=str(tmp_path / "other.keras")))


@pytest.mark.parametrize("input_shape, include_top, message", [
    ((67, 67), True, r"3 dimensions.*input_shape=\(67, 67\)"),
    ((40, 67, 3), True, r"at least 50.*input_shape=\(40, 67, 3\)"),
    ((None, None, 3), True, r"fixed height.*input_shape=\(None, None, 3\)"),
])
def test_resolve_input_refuses_shapes(input_shape, include_top, message):
    with pytest.raises(ValueError, match=message):
        _common.resolve_input(input_shape, None, 64, 50, include_top, "Net")


def test_resolve_input_defaults_and_tensors():
    inputs, image, data_format = _common.resolve_input(
        None, None, 64, 50, True, "Net")
    assert inputs is image and data_format == "channels_last"
    assert tuple(inputs.shape) == (None, 64, 64, 3)
    # a headless network takes any size above the minimum
    inputs, _, _ = _common.resolve_input((None, None, 3), None, 64, 50,
                                         False, "Net")
    assert tuple(inputs.shape) == (None, None, None, 3)
    tensor = keras.Input((70, 80, 3))
    inputs, image, _ = _common.resolve_input(None, tensor, 64, 50, True,
                                             "Net")
    assert image is tensor and inputs[0] is tensor


def test_resolve_input_channels_first_default():
    with image_data_format("channels_first"):
        inputs, _, data_format = _common.resolve_input(
            None, None, 64, 50, True, "Net")
        assert data_format == "channels_first"
        assert tuple(inputs.shape) == (None, 3, 64, 64)
        with pytest.raises(ValueError, match=r"input_shape=\(3, 40, 60\)"):
            _common.resolve_input((3, 40, 60), None, 64, 50, True, "Net")


def _grouped_conv_reference(x, kernel, bias, groups):
    """A valid, stride-1 convolution of NHWC `x`, one group at a time: group
    g's outputs see only group g's input channels."""
    k = kernel.shape[0]
    cin, cout = x.shape[-1] // groups, kernel.shape[-1] // groups
    height, width = x.shape[1] - k + 1, x.shape[2] - k + 1
    out = np.zeros((x.shape[0], height, width, kernel.shape[-1]))
    for g in range(groups):
        part = x[..., g * cin:(g + 1) * cin].astype(np.float64)
        weights = kernel[..., g * cout:(g + 1) * cout].astype(np.float64)
        for i in range(height):
            for j in range(width):
                patch = part[:, i:i + k, j:j + k, :]
                out[:, i, j, g * cout:(g + 1) * cout] = np.einsum(
                    "bhwc,hwco->bo", patch, weights)
    return out + bias


@pytest.mark.parametrize("group_implementation", ["native", "towers"])
def test_grouped_conv_is_a_convolution_per_group(group_implementation):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6, 6, 4))
    outputs = _common.conv(inputs, 6, 3, groups=2, bias=0.5, std=0.3,
                           name="conv", group_implementation=group_implementation)
    model = keras.Model(inputs, outputs)
    layers = _common.weight_layers(model, "conv")
    assert len(layers) == (1 if group_implementation == "native" else 2)
    if group_implementation == "native":
        kernel, bias = (keras.ops.convert_to_numpy(w)
                        for w in layers[0].weights)
    else:  # each tower holds its group's half of the kernel and bias
        assert [layer.name for layer in layers] == ["conv_tower0",
                                                    "conv_tower1"]
        halves = [[keras.ops.convert_to_numpy(w) for w in layer.weights]
                  for layer in layers]
        kernel = np.concatenate([h[0] for h in halves], axis=-1)
        bias = np.concatenate([h[1] for h in halves])
    assert kernel.shape == (3, 3, 2, 6)
    np.testing.assert_array_equal(bias, 0.5)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 4)).astype("float32")
    expected = np.maximum(_grouped_conv_reference(x, kernel, bias, 2), 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               expected, rtol=1e-5, atol=1e-5)
    assert model.count_params() == 3 * 3 * 2 * 6 + 6


def test_weight_layers_of_an_absent_name_is_empty():
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, _common.conv(inputs, 2, 1, name="c"))
    assert _common.weight_layers(model, "c") == [model.get_layer("c")]
    assert _common.weight_layers(model, "fc6") == []


@pytest.mark.parametrize("axis, data_format", [(-1, "channels_last"),
                                               (1, "channels_first")])
def test_channel_slice_takes_its_channels_and_round_trips(axis, data_format):
    x = np.arange(2 * 5 * 3 * 3, dtype="float32").reshape(
        (2, 3, 3, 5) if axis == -1 else (2, 5, 3, 3))
    layer = _common.ChannelSlice(1, 4, axis=axis, name="part")
    expected = x[..., 1:4] if axis == -1 else x[:, 1:4]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)),
                                  expected)
    assert layer.compute_output_shape(x.shape) == expected.shape
    clone = _common.ChannelSlice.from_config(layer.get_config())
    assert (clone.start, clone.stop, clone.axis) == (1, 4, axis)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)),
                                  expected)


def _factory(**kwargs):
    return LocalResponseNormalization(size=3, alpha=2e-4, beta=0.6, bias=1.5,
                                      **kwargs)


def test_norm_layer_for_each_normalization():
    lrn = _common.norm_layer("lrn", "norm1", "channels_last", _factory)
    assert isinstance(lrn, LocalResponseNormalization)
    assert (lrn.name, lrn.size, lrn.window) == ("norm1", 3, "box")
    assert _common.norm_layer("none", "norm1", "channels_last", _factory) is None
    bn = _common.norm_layer("batchnorm", "norm2", "channels_first", _factory)
    assert isinstance(bn, keras.layers.BatchNormalization)
    assert bn.name == "bn2" and bn.axis == 1
    # learned: the network's own values, an exponential window of 2.5
    # channels (coth(1 / 5) = 5.07, the box's 5), all four parameters learned
    learned = _common.norm_layer("learned", "norm1", "channels_first",
                                 _factory)
    assert learned.window == "exponential" and learned.window_scale == 2.5
    assert 1 / np.tanh(1 / (2 * 2.5)) == pytest.approx(5, rel=0.02)
    assert (learned.alpha, learned.beta, learned.bias) == pytest.approx(
        (2e-4, 0.6, 1.5))
    assert learned.data_format == "channels_first"
    learned.build((None, 8, 4, 4))
    assert sorted(w.name for w in learned.trainable_weights) == [
        "alpha", "beta", "bias", "window_scale"]


@pytest.mark.parametrize("pooling, shape", [(None, (3, 3, 5)), ("avg", (5,)),
                                            ("max", (5,))])
def test_global_pool(pooling, shape):
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 5)).astype("float32")
    inputs = keras.Input((3, 3, 5))
    model = keras.Model(inputs, _common.global_pool(inputs, pooling,
                                                    "channels_last"))
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape[1:] == shape
    if pooling is not None:
        reduce = np.mean if pooling == "avg" else np.max
        np.testing.assert_allclose(y, reduce(x, axis=(1, 2)), rtol=1e-6)


# --------------------------------------------------------------------------
# Weights files (load_weights), through a builder
# --------------------------------------------------------------------------

def test_weights_classes_mismatch_is_value_error(tmp_path):
    path = str(tmp_path / "ten.weights.h5")
    AlexNet(input_shape=(67, 67, 3), classes=10).save_weights(path)
    with pytest.raises(ValueError, match="classes=5"):
        AlexNet(input_shape=(67, 67, 3), classes=5, weights=path)


def test_weights_errors_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="downloads nothing.*pass its path"):
        AlexNet(weights="imagenet")
    with pytest.raises(ValueError, match="names no file: check the path"):
        AlexNet(weights=str(tmp_path / "missing.keras"))
    path = str(tmp_path / "ten.weights.h5")
    AlexNet(input_shape=(67, 67, 3), classes=10).save_weights(path)
    with pytest.raises(ValueError, match="Build the model with the `classes`"):
        AlexNet(input_shape=(67, 67, 3), classes=5, weights=path)

