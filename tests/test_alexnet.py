"""keras_lrn/applications/alexnet.py: AlexNet (Krizhevsky, Sutskever &
Hinton, 2012) and its Caffe and ONNX-zoo variants.

References used here are independent of the code under test: layer sizes
and parameter counts are recomputed from the paper's layer table
(tests/architecture.py), LRN outputs are compared with
``tf.nn.local_response_normalization`` and with Caffe's formula written out
in NumPy, grouped convolutions with explicit per-group ``tf.nn.conv2d``
calls.
"""

import numpy as np
import pytest

import keras

from keras_lrn import LocalResponseNormalization
from keras_lrn.applications import AlexNet
from tests.architecture import (conv_params, dense_params, feature_maps,
                                image_data_format, layers_of_type, upstream)


# --------------------------------------------------------------------------
# Independent references: the paper's layer table
# --------------------------------------------------------------------------

# Krizhevsky et al. 2012, Fig. 2 / Sec. 3.5, counting the two GPU towers of
# conv2, conv4, conv5 the paper's way (each half sees half the channels).
ALEXNET_PAPER_PARAMS = (
    conv_params(11, 3, 96)
    + conv_params(5, 96, 256, groups=2)
    + conv_params(3, 256, 384)
    + conv_params(3, 384, 384, groups=2)
    + conv_params(3, 384, 256, groups=2)
    + dense_params(6 * 6 * 256, 4096)
    + dense_params(4096, 4096)
    + dense_params(4096, 1000)
)

ALEXNET_PAPER_SHAPES = {  # Fig. 2 of the AlexNet paper (both towers together)
    "conv1": (55, 55, 96), "conv2": (27, 27, 256), "conv3": (13, 13, 384),
    "conv4": (13, 13, 384), "conv5": (13, 13, 256), "pool5": (6, 6, 256),
    "fc6": (4096,), "fc7": (4096,), "fc8": (1000,),
}

@pytest.fixture(scope="module")
def alexnet_original():
    keras.utils.set_random_seed(0)
    return AlexNet()


@pytest.fixture(scope="module")
def alexnet_caffenet():
    return AlexNet(variant="caffenet")


def _lrn_layers(model):
    return layers_of_type(model, LocalResponseNormalization)


# --------------------------------------------------------------------------
# AlexNet architecture
# --------------------------------------------------------------------------

def test_original_parameter_count_is_papers(alexnet_original):
    assert ALEXNET_PAPER_PARAMS == 60_965_224  # the figure quoted in issue 4
    assert alexnet_original.count_params() == ALEXNET_PAPER_PARAMS


def test_caffenet_and_towers_keep_parameter_count(alexnet_caffenet):
    assert alexnet_caffenet.count_params() == ALEXNET_PAPER_PARAMS
    towers = AlexNet(group_implementation="towers")
    assert towers.count_params() == ALEXNET_PAPER_PARAMS


@pytest.mark.parametrize("fixture", ["alexnet_original", "alexnet_caffenet"])
def test_alexnet_layer_shapes_match_paper(fixture, request):
    model = request.getfixturevalue(fixture)
    assert tuple(model.input.shape[1:]) == (227, 227, 3)
    for name, shape in ALEXNET_PAPER_SHAPES.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape, name
    assert tuple(model.output.shape[1:]) == (1000,)


def test_grouped_layers_are_the_papers(alexnet_original):
    # conv2/4/5 see half of their input channels; conv1, conv3 see all.
    expected = {"conv1": (11, 11, 3, 96), "conv2": (5, 5, 48, 256),
                "conv3": (3, 3, 256, 384), "conv4": (3, 3, 192, 384),
                "conv5": (3, 3, 192, 256)}
    for name, shape in expected.items():
        assert tuple(alexnet_original.get_layer(name).kernel.shape) == shape, name


def test_original_is_relu_norm_pool_and_caffenet_is_relu_pool_norm(
        alexnet_original, alexnet_caffenet):
    for i in (1, 2):
        assert upstream(alexnet_original, f"norm{i}") == f"conv{i}_relu"
        assert upstream(alexnet_original, f"pool{i}") == f"norm{i}"
        assert upstream(alexnet_caffenet, f"pool{i}") == f"conv{i}_relu"
        assert upstream(alexnet_caffenet, f"norm{i}") == f"pool{i}"
    assert upstream(alexnet_original, "pool5") == "conv5_relu"
    assert len(_lrn_layers(alexnet_original)) == 2
    # overlapping pooling: 3x3 windows, stride 2
    for i in (1, 2, 5):
        pool = alexnet_original.get_layer(f"pool{i}")
        assert tuple(pool.pool_size) == (3, 3) and tuple(pool.strides) == (2, 2)


def test_dropout_before_fc7_and_fc8(alexnet_original):
    assert upstream(alexnet_original, "fc7") == "drop6"
    assert upstream(alexnet_original, "fc8") == "drop7"
    assert alexnet_original.get_layer("drop6").rate == 0.5
    assert alexnet_original.get_layer("drop7").rate == 0.5


def test_initialisation_follows_paper(alexnet_original):
    ones = {"conv2", "conv4", "conv5", "fc6", "fc7"}
    for name in ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]:
        layer = alexnet_original.get_layer(name)
        bias = keras.ops.convert_to_numpy(layer.bias)
        np.testing.assert_array_equal(bias, 1.0 if name in ones else 0.0, err_msg=name)
        w = keras.ops.convert_to_numpy(layer.kernel)
        # N(0, 0.01): the sample std of >= 34,848 draws is within 5%.
        assert abs(w.std() - 0.01) < 5e-4, name
        assert abs(w.mean()) < 5 * 0.01 / np.sqrt(w.size), name


# --------------------------------------------------------------------------
# LRN settings, checked against independent formulas
# --------------------------------------------------------------------------

def test_original_lrn_matches_paper_via_tensorflow(alexnet_original):
    tf = pytest.importorskip("tensorflow")
    x = feature_maps()
    # per GPU tower (groups=2): TensorFlow's op on each half of the channels
    ref = np.concatenate([
        tf.nn.local_response_normalization(half, depth_radius=2, bias=2.0,
                                           alpha=1e-4, beta=0.75).numpy()
        for half in np.split(x, 2, axis=-1)], axis=-1)
    for layer in _lrn_layers(alexnet_original):
        assert layer.groups == 2
        fresh = type(layer).from_config(layer.get_config())
        got = keras.ops.convert_to_numpy(fresh(x))
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # and the normalization actually does something at these magnitudes
    assert np.abs(ref - x).max() > 1.0


def test_caffenet_lrn_matches_caffe_formula(alexnet_caffenet):
    x = feature_maps(seed=2).astype("float64")
    sq = np.pad(x ** 2, ((0, 0), (0, 0), (0, 0), (2, 2)))
    window = sum(sq[..., i:i + x.shape[-1]] for i in range(5))
    ref = x / (1.0 + (1e-4 / 5) * window) ** 0.75  # Caffe: k=1, alpha/n
    for layer in _lrn_layers(alexnet_caffenet):
        fresh = type(layer).from_config(layer.get_config())
        got = keras.ops.convert_to_numpy(fresh(x.astype("float32")))
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------
# Ablation switch
# --------------------------------------------------------------------------

def test_normalization_none_and_batchnorm():
    none = AlexNet(normalization="none", input_shape=(67, 67, 3), classes=10)
    assert not _lrn_layers(none)
    assert not [l for l in none.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert upstream(none, "pool1") == "conv1_relu"
    lrn = AlexNet(input_shape=(67, 67, 3), classes=10)
    assert none.count_params() == lrn.count_params()  # LRN has no parameters

    bn = AlexNet(normalization="batchnorm", input_shape=(67, 67, 3), classes=10)
    bns = [l for l in bn.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert not _lrn_layers(bn)
    assert [l.name for l in bns] == ["bn1", "bn2"]
    assert upstream(bn, "bn1") == "conv1_relu" and upstream(bn, "pool1") == "bn1"
    # gamma, beta, moving mean, moving variance per channel (96 and 256)
    assert bn.count_params() == lrn.count_params() + 4 * (96 + 256)


# --------------------------------------------------------------------------
# Grouped convolutions
# --------------------------------------------------------------------------

def _copy_native_to_towers(native, towers):
    for name in ["conv1", "conv3", "fc6", "fc7", "fc8"]:
        towers.get_layer(name).set_weights(native.get_layer(name).get_weights())
    for name in ["conv2", "conv4", "conv5"]:
        k, b = native.get_layer(name).get_weights()
        half = k.shape[-1] // 2
        for g in range(2):
            towers.get_layer(f"{name}_tower{g}").set_weights(
                [k[..., g * half:(g + 1) * half], b[g * half:(g + 1) * half]])


def test_towers_compute_the_same_function_as_grouped_conv():
    native = AlexNet(input_shape=(67, 67, 3), classes=7, classifier_activation=None)
    towers = AlexNet(input_shape=(67, 67, 3), classes=7, classifier_activation=None,
                     group_implementation="towers")
    assert native.count_params() == towers.count_params()
    _copy_native_to_towers(native, towers)
    x = np.random.default_rng(0).normal(size=(2, 67, 67, 3)).astype("float32") * 50
    a = keras.ops.convert_to_numpy(native(x, training=False))
    b = keras.ops.convert_to_numpy(towers(x, training=False))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(a).max())


@pytest.mark.tensorflow  # its execution modes
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_grouped_conv2d_forward_backward_on_tensorflow(mode):
    """tensorflow/tensorflow#29005 and relatives: Conv2D(groups=2) on CPU."""
    import tensorflow as tf

    x = tf.random.stateless_normal((2, 9, 9, 8), seed=(1, 2))
    conv = keras.layers.Conv2D(6, 3, groups=2, padding="same")
    conv.build(x.shape)

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = conv(x)
            loss = tf.reduce_sum(y ** 2)
        return y, tape.gradient(loss, [x, conv.kernel, conv.bias])

    def ref_step(x):
        k, b = tf.constant(conv.kernel.numpy()), tf.constant(conv.bias.numpy())
        with tf.GradientTape() as tape:
            tape.watch([x, k, b])
            xs = tf.split(x, 2, axis=-1)
            y = tf.concat([tf.nn.conv2d(xs[g], k[..., 3 * g:3 * g + 3], 1, "SAME")
                           for g in range(2)], -1) + b
            loss = tf.reduce_sum(y ** 2)
        return y, tape.gradient(loss, [x, k, b])

    fn = {"eager": step, "graph": tf.function(step),
          "xla": tf.function(step, jit_compile=True)}[mode]
    y, grads = fn(x)
    y_ref, grads_ref = ref_step(x)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=1e-4, atol=1e-4)
    for g, r in zip(grads, grads_ref):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-4, atol=1e-3)


@pytest.mark.tensorflow  # its XLA
def test_small_alexnet_trains_under_xla_with_both_group_implementations():
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(8, 67, 67, 3)).astype("float32")
    y = np.arange(8) % 2
    for impl in ("native", "towers"):
        model = AlexNet(input_shape=(67, 67, 3), classes=2, group_implementation=impl)
        model.compile("sgd", "sparse_categorical_crossentropy", jit_compile=True)
        before = model.get_layer("conv1").kernel.numpy().copy()
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss)
        assert not np.array_equal(before, model.get_layer("conv1").kernel.numpy())
    del tf


# --------------------------------------------------------------------------
# keras.applications-style arguments, weights, errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("pooling,shape", [(None, (1, 1, 256)), ("avg", (256,)), ("max", (256,))])
def test_include_top_false(pooling, shape):
    model = AlexNet(include_top=False, input_shape=(67, 67, 3), pooling=pooling)
    assert tuple(model.output.shape[1:]) == shape
    assert "fc6" not in [l.name for l in model.layers]


def test_input_tensor():
    inp = keras.Input((99, 99, 3))
    model = AlexNet(input_tensor=inp, classes=4)
    assert model.inputs[0] is inp and tuple(model.output.shape) == (None, 4)


@pytest.mark.parametrize("impl", ["native", "towers"])
@pytest.mark.parametrize("ext", [".keras", ".weights.h5"])
def test_weights_path_round_trip(tmp_path, impl, ext):
    kw = dict(input_shape=(67, 67, 3), classes=3, group_implementation=impl)
    model = AlexNet(**kw)
    path = str(tmp_path / f"m{ext}")
    (model.save if ext == ".keras" else model.save_weights)(path)
    keras.utils.set_random_seed(123)
    loaded = AlexNet(weights=path, **kw)
    x = np.random.default_rng(0).normal(size=(2, 67, 67, 3)).astype("float32") * 30
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    if ext == ".keras":  # the whole model also reloads with load_model
        again = keras.models.load_model(path)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)),
                                   keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(variant="vgg"), "variant.*'vgg'"),
    (dict(normalization="lcn"), "normalization.*'lcn'"),
    (dict(group_implementation="magic"), "group_implementation.*'magic'"),
    (dict(weights="imagenet"), "weights.*'imagenet'"),
    (dict(weights="/nonexistent/alexnet.keras"), "weights.*/nonexistent/alexnet.keras"),
    (dict(pooling="sum", include_top=False), "pooling.*'sum'"),
    (dict(classes=0), "classes.*0"),
    (dict(input_shape=(32, 32, 3)), r"input_shape.*\(32, 32, 3\)"),
    (dict(input_shape=(None, None, 3)), "input_shape"),
    (dict(dropout=1.5), "dropout.*1.5"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        AlexNet(**kwargs)
    # Keras's style: the message ends by quoting the argument
    assert "Received: " in str(info.value)


# --------------------------------------------------------------------------
# channels_first
# --------------------------------------------------------------------------

def test_channels_first_shapes():
    with image_data_format("channels_first"):
        model = AlexNet()
        towers = AlexNet(group_implementation="towers", variant="caffenet")
    assert tuple(model.input.shape[1:]) == (3, 227, 227)
    assert tuple(model.get_layer("pool5").output.shape[1:]) == (256, 6, 6)
    assert model.count_params() == ALEXNET_PAPER_PARAMS
    assert towers.count_params() == ALEXNET_PAPER_PARAMS
    assert tuple(towers.input.shape[1:]) == (3, 227, 227)
    for layer in _lrn_layers(model):
        assert layer.data_format == "channels_first"


# --------------------------------------------------------------------------
# Mixed precision (what the training example turns on for GPUs)
# --------------------------------------------------------------------------

@pytest.fixture
def mixed_float16():
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy(old)


def test_mixed_precision_keeps_float32_predictions_and_finite_lrn(mixed_float16):
    model = AlexNet(input_shape=(67, 67, 3), classes=10)
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.output.dtype == "float32"
    # Scale conv1 up so its activations reach several hundred: the sum of 5
    # squares then exceeds float16's 65504 and would overflow if LRN
    # computed in float16.
    conv1 = model.get_layer("conv1")
    conv1.kernel.assign(conv1.kernel * 20.0)
    x = np.random.default_rng(0).uniform(-128, 128, (2, 67, 67, 3)).astype("float32")
    probe = keras.Model(model.input, [model.get_layer("conv1_relu").output,
                                      model.get_layer("norm1").output, model.output])
    act, normed, probs = [keras.ops.convert_to_numpy(t).astype("float64") for t in probe(x)]
    assert (act ** 2).max() > 65504 and np.abs(act).max() < 60000
    assert np.isfinite(normed).all() and np.isfinite(probs).all()
    # per GPU tower (groups=2): the window stays inside each half
    halves = []
    for half in np.split(act, 2, axis=-1):
        sq = np.pad(half ** 2, ((0, 0), (0, 0), (0, 0), (2, 2)))
        window = sum(sq[..., i:i + half.shape[-1]] for i in range(5))
        halves.append(half / (2.0 + 1e-4 * window) ** 0.75)
    ref = np.concatenate(halves, axis=-1)
    np.testing.assert_allclose(normed, ref, rtol=2e-3, atol=2e-3 * np.abs(ref).max())
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------
# LRN per tower, and learned LRN (moved from the core modules test_groups.py
# and test_learned.py: marked `core` to stay in CI's lowest-Keras run)
# --------------------------------------------------------------------------

@pytest.mark.core
def test_alexnet_original_normalizes_per_tower_and_caffe_variants_do_not():
    def lrn_groups(model):
        return [layer.groups for layer in _lrn_layers(model)]

    small = dict(input_shape=(67, 67, 3), include_top=False)
    assert lrn_groups(AlexNet(variant="original", **small)) == [2, 2]
    assert lrn_groups(AlexNet(variant="caffenet", **small)) == [1, 1]
    assert lrn_groups(AlexNet(variant="bvlc", **small)) == [1, 1]
    assert lrn_groups(AlexNet(variant="original", normalization="learned",
                              **small)) == [2, 2]
    doc = AlexNet.__doc__
    assert "layers/layers-imagenet-2gpu-model.cfg" in doc
    assert "[rnorm1a]" in doc and "channels=48" in doc
    assert "channels=128" in doc


@pytest.mark.core
def test_alexnet_offers_learned_lrn_at_its_two_lrn_positions(rng):
    fixed = AlexNet(input_shape=(67, 67, 3), classes=10)
    model = AlexNet(normalization="learned", input_shape=(67, 67, 3),
                    classes=10)
    norms = _lrn_layers(model)
    assert [layer.name for layer in norms] == ["norm1", "norm2"]
    for layer in norms:
        assert layer.window == "exponential"
        assert [w.name for w in layer.trainable_weights] == [
            "alpha", "beta", "bias", "window_scale"]
        assert [layer.alpha, layer.beta, layer.bias, layer.window_scale] == (
            pytest.approx([1e-4, 0.75, 2.0, 2.5], rel=1e-6))
    assert model.count_params() == fixed.count_params() + 8
    x = rng.uniform(0, 1, (1, 67, 67, 3)).astype(np.float32)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(model(x))))
