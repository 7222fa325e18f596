"""The layer as Keras sees it: arguments, errors, config, converters,
training."""

import math
import re
import warnings

import keras
import numpy as np
import pytest

import keras_lrn
from keras_lrn import LRN, LocalResponseNormalization
from tests import reference

ARGUMENTS = dict(size=4, alpha=3e-4, beta=0.6, bias=1.5, mode="within_channel",
                 data_format="channels_first", even_window_side="before",
                 implementation="portable")


def test_lrn_is_an_alias():
    assert LRN is LocalResponseNormalization


def test_defaults_are_alexnets_published_hyperparameters():
    layer = LocalResponseNormalization()
    assert (layer.size, layer.alpha, layer.beta, layer.bias) == (
        5, 1e-4, 0.75, 2.0)
    assert layer.mode == "across_channels"
    assert layer.data_format == keras.config.image_data_format()
    assert layer.implementation == "auto"


def test_version_is_exposed():
    # a PEP 440 release (1.2.3) or the development version before one
    # (1.2.3.dev0): what changed since the last release is unreleased
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", keras_lrn.__version__)


def test_get_config_round_trips_every_argument():
    layer = LRN(**ARGUMENTS, name="norm1", dtype="float64")
    config = layer.get_config()
    for key, value in ARGUMENTS.items():
        assert config[key] == value
    clone = LRN.from_config(config)
    assert clone.get_config() == config
    assert clone.dtype_policy.name == "float64"
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "keras_lrn>LocalResponseNormalization"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert restored.get_config() == config


def test_config_saved_before_implementation_existed_loads_as_auto():
    config = LRN(**{k: v for k, v in ARGUMENTS.items()
                    if k != "implementation"}).get_config()
    del config["implementation"]
    assert LRN.from_config(config).implementation == "auto"


def test_output_shape_and_symbolic_use(rng):
    inputs = keras.Input((None, None, 6))
    outputs = LRN(size=3)(inputs)
    assert tuple(outputs.shape) == (None, None, None, 6)
    ops_outputs = keras_lrn.ops.local_response_normalization(inputs)
    assert tuple(ops_outputs.shape) == (None, None, None, 6)
    model = keras.Model(inputs, [outputs, ops_outputs])
    x = rng.uniform(0, 30, (2, 5, 4, 6)).astype("float32")
    for y, size in zip(model(x), (3, 5)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(y),
            reference.lrn(x, size, 1e-4, 0.75, 2.0), rtol=1e-5)


def test_within_channel_accepts_unknown_channels_and_spatial_dims(rng):
    inputs = keras.Input((None, None, None))
    model = keras.Model(inputs, LRN(mode="within_channel", size=3)(inputs))
    x = rng.uniform(0, 30, (1, 6, 5, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)),
        reference.lrn(x, 3, 1e-4, 0.75, 2.0, mode="within_channel"),
        rtol=1e-5)


def test_has_no_weights():
    layer = LRN()
    layer.build((None, 4, 4, 8))
    assert layer.weights == []


def test_passes_the_mask_to_the_next_layer(rng):
    # Masking -> LRN -> a masked mean: padded time steps (all zero) must
    # stay out of the mean, which they enter if LRN drops the mask.
    x = rng.uniform(1, 30, (2, 6, 8)).astype("float32")
    x[0, 4:] = 0.0
    x[1, 2:] = 0.0
    inputs = keras.Input((6, 8))
    masked = keras.layers.Masking(mask_value=0.0)(inputs)
    normalized = LRN(size=3, alpha=1e-2, data_format="channels_last")(masked)
    model = keras.Model(
        inputs, keras.layers.GlobalAveragePooling1D()(normalized))
    expected = reference.lrn(x, 3, 1e-2, 0.75, 2.0)
    expected = np.stack([expected[0, :4].mean(0), expected[1, :2].mean(0)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               expected, rtol=1e-5)


# --- bad arguments: ValueError at construction, naming argument and value --

@pytest.mark.parametrize("name, value", [
    ("size", 0), ("size", -3), ("size", 2.5), ("size", "5"), ("size", True),
    ("size", None),
    ("alpha", -1e-4), ("alpha", math.nan), ("alpha", math.inf),
    ("alpha", "1e-4"),
    ("beta", -0.75), ("beta", math.nan), ("beta", None),
    ("bias", 0.0), ("bias", -1.0), ("bias", math.nan), ("bias", math.inf),
    ("mode", "across"), ("mode", "WITHIN_CHANNEL"), ("mode", None),
    ("data_format", "NHWC"), ("data_format", "channels_middle"),
    ("even_window_side", "left"), ("implementation", "fast"),
])
def test_bad_argument_raises_naming_it(name, value):
    with pytest.raises(ValueError, match=rf"{name}={value!r}".replace(
            "(", r"\(").replace(")", r"\)")):
        LRN(**{name: value})
    with pytest.raises(ValueError, match=name):
        keras_lrn.ops.local_response_normalization(
            np.ones((1, 2, 2, 3), "float32"), **{name: value})


def test_numpy_integer_size_is_accepted():
    assert LRN(size=np.int64(3)).size == 3


# --- bad input: clear errors at build or call -------------------------------

@pytest.mark.parametrize("shape", [(4,), (2, 8)])
def test_rank_below_three_is_rejected_naming_the_shape(shape):
    with pytest.raises(ValueError, match=r"rank >= 3.*" +
                       str(shape).replace("(", r"\(").replace(")", r"\)")):
        LRN().build(shape)
    with pytest.raises(ValueError, match="rank >= 3"):
        keras_lrn.ops.local_response_normalization(np.ones(shape, "float32"))


def test_unknown_channels_in_across_mode_is_rejected_at_build():
    with pytest.raises(ValueError, match=r"channel dimension.*None"):
        LRN(data_format="channels_last").build((None, 8, 8, None))
    with pytest.raises(ValueError, match=r"channel dimension.*axis 1"):
        LRN(data_format="channels_first")(keras.Input((None, 8, 8)))


def test_channel_count_is_fixed_after_build():
    layer = LRN()
    layer(np.ones((1, 3, 3, 8), "float32"))
    with pytest.raises(ValueError, match="incompatible"):
        layer(np.ones((1, 3, 3, 9), "float32"))


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8"])
def test_integer_input_is_rejected_naming_the_dtype(dtype):
    # (JAX without x64 turns int64 into int32: match the kind)
    with pytest.raises(ValueError, match=f"dtype={dtype[:-2]}"):
        LRN()(np.ones((1, 3, 3, 8), dtype))


# --- implementation="native" ------------------------------------------------

@pytest.mark.tensorflow  # elsewhere the backend is the first reason given
def test_native_where_the_op_cannot_serve_raises_at_construction():
    for arguments, message in [
        (dict(mode="within_channel"), "mode 'within_channel'"),
        (dict(size=4), "odd sizes"),
        (dict(data_format="channels_first"), "channels_last"),
    ]:
        with pytest.raises(ValueError, match=message):
            LRN(implementation="native", **arguments)


@pytest.mark.tensorflow  # the native op exists on TensorFlow only
def test_native_where_the_input_cannot_be_served_raises_at_build():
    with pytest.raises(ValueError, match=r"4-D input.*\(None, 8, 6\)"):
        LRN(implementation="native").build((None, 8, 6))
    with pytest.raises(ValueError, match="float64"):
        LRN(implementation="native", dtype="float64").build((None, 8, 8, 6))


@pytest.mark.jax
@pytest.mark.torch  # the other backends
def test_native_on_another_backend_raises_at_construction():
    with pytest.raises(ValueError, match="TensorFlow backend"):
        LRN(implementation="native")


# --- converters ---------------------------------------------------------------

def test_alexnet_hyperparameters_through_every_converter():
    # "n=5, alpha=1e-4, beta=0.75, k=2" is depth_radius=2 in TensorFlow,
    # and alpha * n in the conventions that divide by the window.
    alexnet = LRN()
    assert alexnet.to_tensorflow() == dict(depth_radius=2, bias=2.0,
                                           alpha=1e-4, beta=0.75)
    assert alexnet.to_torch() == pytest.approx(dict(size=5, alpha=5e-4,
                                                    beta=0.75, k=2.0))
    assert alexnet.to_onnx() == pytest.approx(dict(size=5, alpha=5e-4,
                                                   beta=0.75, bias=2.0))
    caffe = alexnet.to_caffe()
    assert caffe.pop("norm_region") == "ACROSS_CHANNELS"
    assert caffe == pytest.approx(dict(local_size=5, alpha=5e-4, beta=0.75,
                                       k=2.0))
    for layer in (LRN.from_tensorflow(depth_radius=2, bias=2.0, alpha=1e-4,
                                      beta=0.75),
                  LRN.from_torch(5, alpha=5e-4, beta=0.75, k=2.0),
                  LRN.from_onnx(5, alpha=5e-4, beta=0.75, bias=2.0),
                  LRN.from_caffe(5, alpha=5e-4, beta=0.75, k=2.0)):
        assert (layer.size, layer.beta, layer.bias) == (5, 0.75, 2.0)
        assert layer.alpha == pytest.approx(1e-4)


def test_converter_defaults_are_the_frameworks_own():
    tf_layer = LRN.from_tensorflow()  # depth_radius=5, bias=1, alpha=1, beta=.5
    assert (tf_layer.size, tf_layer.bias, tf_layer.alpha, tf_layer.beta) == (
        11, 1.0, 1.0, 0.5)
    caffe = LRN.from_caffe()  # local_size=5, alpha=1, beta=.75, k=1
    assert (caffe.size, caffe.alpha, caffe.beta, caffe.bias) == (
        5, 0.2, 0.75, 1.0)
    torch_layer = LRN.from_torch(3)
    assert torch_layer.alpha == pytest.approx(1e-4 / 3)
    assert torch_layer.bias == 1.0
    assert LRN.from_onnx(3).bias == 1.0


def test_caffe_within_channel_divides_by_the_box_and_fixes_k():
    layer = LRN.from_caffe(3, alpha=9e-4, norm_region="WITHIN_CHANNEL")
    assert layer.mode == "within_channel"
    assert layer.alpha == pytest.approx(1e-4)
    assert layer.bias == 1.0
    with pytest.warns(UserWarning, match=r"k=2\.0"):
        layer = LRN.from_caffe(3, k=2.0, norm_region="WITHIN_CHANNEL")
    assert layer.bias == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LRN.from_caffe(3, k=1.0, norm_region="WITHIN_CHANNEL")


@pytest.mark.parametrize("local_size", [2, 4])
def test_caffe_rejects_even_local_size(local_size):
    with pytest.raises(ValueError, match=f"local_size={local_size}"):
        LRN.from_caffe(local_size)


def test_caffe_rejects_unknown_norm_region():
    with pytest.raises(ValueError, match="norm_region='ACROSS'"):
        LRN.from_caffe(5, norm_region="ACROSS")


def test_even_sizes_keep_each_frameworks_side():
    assert LRN.from_torch(4).even_window_side == "before"
    assert LRN.from_onnx(4).even_window_side == "after"
    assert LRN.from_torch(4).to_torch()["size"] == 4
    with pytest.raises(ValueError, match="even_window_side='before'"):
        LRN.from_onnx(4).to_torch()
    with pytest.raises(ValueError, match="even_window_side='after'"):
        LRN.from_torch(4).to_onnx()
    with pytest.raises(ValueError, match="only odd sizes"):
        LRN(size=4).to_tensorflow()
    with pytest.raises(ValueError, match="only odd sizes"):
        LRN(size=4).to_caffe()


def test_converters_pass_layer_arguments_through():
    layer = LRN.from_torch(3, data_format="channels_first", name="lrn_a",
                           dtype="float64")
    assert layer.data_format == "channels_first"
    assert layer.name == "lrn_a"
    assert layer.compute_dtype == "float64"
    with pytest.raises(ValueError, match=r"\['mode'\]"):
        LRN.from_torch(3, mode="within_channel")


def test_reverse_converters_raise_where_the_framework_cannot_express_it():
    within = LRN(mode="within_channel", size=3, bias=1.0)
    for convert in (within.to_tensorflow, within.to_torch, within.to_onnx):
        with pytest.raises(ValueError, match="across_channels"):
            convert()
    assert within.to_caffe()["norm_region"] == "WITHIN_CHANNEL"
    assert within.to_caffe()["alpha"] == pytest.approx(9e-4)
    with pytest.raises(ValueError, match=r"fixed at 1\.0.*bias=2\.0"):
        LRN(mode="within_channel", size=3, bias=2.0).to_caffe()


FRAMEWORKS = ("tensorflow", "caffe", "torch", "onnx")


@pytest.mark.parametrize("layer, expressible", [
    (LRN(), FRAMEWORKS),
    (LRN(size=3, alpha=1e-3, beta=0.5, bias=1.0), FRAMEWORKS),
    (LRN(mode="within_channel", size=5, bias=1.0), ("caffe",)),
    (LRN(size=6, even_window_side="before"), ("torch",)),
    (LRN(size=6), ("onnx",)),
])
def test_to_and_from_round_trip(layer, expressible):
    for framework in FRAMEWORKS:
        if framework not in expressible:
            with pytest.raises(ValueError, match="cannot express"):
                getattr(layer, f"to_{framework}")()
            continue
        hyperparameters = getattr(layer, f"to_{framework}")()
        clone = getattr(LRN, f"from_{framework}")(**hyperparameters)
        for name in ("size", "beta", "bias", "mode"):
            assert getattr(clone, name) == getattr(layer, name)
        assert clone.alpha == pytest.approx(layer.alpha)
        if layer.size % 2 == 0:
            assert clone.even_window_side == layer.even_window_side


# --- training -----------------------------------------------------------------

# jit_compile is XLA on TensorFlow and JAX (on PyTorch it is a minutes-long
# torch.compile); PyTorch training is in test_backends.py
@pytest.mark.tensorflow
@pytest.mark.jax
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_trains_with_jit_compile_under_mixed_precision(rng, policy, mode):
    keras.config.set_dtype_policy(policy)
    try:
        inputs = keras.Input((8, 8, 3))
        features = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
        normalized = LRN(mode=mode, alpha=1e-2, size=3)(features)
        outputs = keras.layers.Dense(2, dtype="float32")(
            keras.layers.GlobalAveragePooling2D()(normalized))
        model = keras.Model(inputs, outputs)
        half = policy.split("_")[1]
        assert model.layers[2].compute_dtype == half
        model.compile(optimizer="sgd", jit_compile=True,
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True))
        x = rng.uniform(0, 255, (16, 8, 8, 3)).astype("float32")
        y = rng.integers(0, 2, 16)
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        assert all(np.isfinite(history.history["loss"]))
        # the trained layer, compiled the same way, is the formula of its
        # half-precision input computed in float32 and rounded once
        probe = keras.Model(inputs, [features, normalized])
        probe.compile(jit_compile=True)
        lrn_in, lrn_out = probe.predict(x, batch_size=8, verbose=0)
        assert lrn_out.dtype == reference.NUMPY_DTYPES[half]
        reference.assert_matches_in_dtype(
            lrn_out, reference.lrn(lrn_in.astype(np.float64), size=3,
                                   alpha=1e-2, beta=0.75, bias=2.0,
                                   mode=mode), half)
    finally:
        keras.config.set_dtype_policy("float32")


# --- errors that point to the fix ----------------------------------------------

@pytest.mark.parametrize("keyword, converter", [
    ("depth_radius", "from_tensorflow"), ("k", "from_caffe"),
    ("local_size", "from_caffe"), ("n", "size=n")])
def test_another_frameworks_keyword_points_to_its_converter(keyword,
                                                            converter):
    with pytest.raises(ValueError, match=rf"`{keyword}`.*{converter}.*"
                                         rf"Received: {keyword}=2"):
        LocalResponseNormalization(**{keyword: 2})


def test_a_two_dimensional_input_says_what_to_do():
    with pytest.raises(ValueError, match=r"rank >= 3.*reshape.*"
                                         r"Received: input shape=\(4, 8\)"):
        LocalResponseNormalization()(np.ones((4, 8), np.float32))
