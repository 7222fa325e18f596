"""keras_lrn/applications/googlenet.py: GoogLeNet (Szegedy et al., 2014),
as the ONNX model zoo's inception_v1 builds it.

The architecture is checked against Table 1 of the paper, transcribed here
(not read from keras_lrn): every inception module's filters and output
depth, the parameter count recomputed from them, the two LRN layers where
the paper's Fig. 3 puts them, and their output against the ONNX `LRN`
operator's definition (tests/reference.py). Spatial sizes round down, as
the zoo graph's pools do (the paper's table rounds up: 56, 28, 14, 7).
"""

import numpy as np
import pytest

import keras

from keras_lrn import LocalResponseNormalization
from keras_lrn.applications import GoogLeNet
from tests import reference
from tests.architecture import (conv_params, dense_params, feature_maps,
                                layers_of_type, upstream)

# Szegedy et al. 2014, Table 1: (module, output depth, #1x1, #3x3 reduce,
# #3x3, #5x5 reduce, #5x5, pool proj)
PAPER_TABLE = (
    ("3a", 256, 64, 96, 128, 16, 32, 32),
    ("3b", 480, 128, 128, 192, 32, 96, 64),
    ("4a", 512, 192, 96, 208, 16, 48, 64),
    ("4b", 512, 160, 112, 224, 24, 64, 64),
    ("4c", 512, 128, 128, 256, 24, 64, 64),
    ("4d", 528, 112, 144, 288, 32, 64, 64),
    ("4e", 832, 256, 160, 320, 32, 128, 128),
    ("5a", 832, 256, 160, 320, 32, 128, 128),
    ("5b", 1024, 384, 192, 384, 48, 128, 128),
)


def _pooled(length):
    """A 3x3/2 max-pool without padding, rounding down."""
    return (length - 3) // 2 + 1


def _paper_params(classes=1000):
    """Conv 7x7/2 (64), conv 1x1 (64) and 3x3 (192), the nine inception
    modules (every branch's convolutions, with biases) and the linear
    classifier; no auxiliary classifier (used only in training)."""
    total = (conv_params(7, 3, 64) + conv_params(1, 64, 64)
             + conv_params(3, 64, 192))
    channels = 192
    for _, depth, f1, f3r, f3, f5r, f5, fp in PAPER_TABLE:
        total += (conv_params(1, channels, f1) + conv_params(1, channels, f3r)
                  + conv_params(3, f3r, f3) + conv_params(1, channels, f5r)
                  + conv_params(5, f5r, f5) + conv_params(1, channels, fp))
        channels = depth
    return total + dense_params(channels, classes)


@pytest.fixture(scope="module")
def googlenet():
    return GoogLeNet()


def _lrn_layers(model):
    return layers_of_type(model, LocalResponseNormalization)


def test_the_transcribed_table_adds_up():
    for module, depth, f1, _, f3, _, f5, fp in PAPER_TABLE:
        assert f1 + f3 + f5 + fp == depth, module


def test_every_inception_module_is_the_papers(googlenet):
    for module, depth, f1, f3r, f3, f5r, f5, fp in PAPER_TABLE:
        prefix = f"inception_{module}_"
        assert googlenet.get_layer(prefix + "output").output.shape[-1] == (
            depth), module
        for branch, (kernel, filters) in {
                "1x1": (1, f1), "3x3_reduce": (1, f3r), "3x3": (3, f3),
                "5x5_reduce": (1, f5r), "5x5": (5, f5),
                "pool_proj": (1, fp)}.items():
            shape = tuple(googlenet.get_layer(prefix + branch).kernel.shape)
            assert shape[:2] == (kernel, kernel), prefix + branch
            assert shape[-1] == filters, prefix + branch


def test_output_shapes_round_down(googlenet):
    conv1 = (224 + 2 * 3 - 7) // 2 + 1  # 7x7/2, padded by 3
    pool1 = _pooled(conv1)
    pool2 = _pooled(pool1)
    pool3 = _pooled(pool2)
    pool4 = _pooled(pool3)
    assert (conv1, pool1, pool2, pool3, pool4) == (112, 55, 27, 13, 6)
    expected = {
        "conv1_7x7_s2": (conv1, conv1, 64), "pool1_3x3_s2": (pool1, pool1, 64),
        "conv2_3x3": (pool1, pool1, 192), "pool2_3x3_s2": (pool2, pool2, 192),
        "inception_3b_output": (pool2, pool2, 480),
        "pool3_3x3_s2": (pool3, pool3, 480),
        "inception_4e_output": (pool3, pool3, 832),
        "pool4_3x3_s2": (pool4, pool4, 832),
        "inception_5b_output": (pool4, pool4, 1024),
    }
    for name, shape in expected.items():
        assert tuple(googlenet.get_layer(name).output.shape[1:]) == shape, name
    assert tuple(googlenet.output.shape) == (None, 1000)


def test_parameter_count_is_the_tables(googlenet):
    assert googlenet.count_params() == _paper_params()
    assert GoogLeNet(classes=10, input_shape=(99, 99, 3)).count_params() == (
        _paper_params(10))


def test_lrn_after_pool1_and_after_conv2_as_in_fig_3(googlenet):
    # Fig. 3: MaxPool 3x3+2 -> LocalRespNorm -> Conv 1x1 -> Conv 3x3 ->
    # LocalRespNorm -> MaxPool 3x3+2
    assert [layer.name for layer in _lrn_layers(googlenet)] == [
        "pool1_norm1", "conv2_norm2"]
    assert upstream(googlenet, "pool1_norm1") == "pool1_3x3_s2"
    assert upstream(googlenet, "conv2_3x3_reduce") == "pool1_norm1"
    assert upstream(googlenet, "conv2_norm2") == "conv2_3x3_relu"
    assert upstream(googlenet, "pool2_3x3_s2") == "conv2_norm2"
    assert googlenet.get_layer("pool5_drop_7x7_s1").rate == 0.4


def test_lrn_is_the_zoo_graphs_onnx_lrn(googlenet):
    # the zoo's inception_v1: LRN size 5, alpha 1e-4, beta 0.75, bias 1 in
    # ONNX's convention (alpha divided by size)
    x = feature_maps(channels=64, seed=4).astype("float64")
    expected = np.moveaxis(reference.onnx_lrn(
        np.moveaxis(x, -1, 1), size=5, alpha=1e-4, beta=0.75, bias=1.0),
        1, -1)
    for layer in _lrn_layers(googlenet):
        fresh = type(layer).from_config(layer.get_config())
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(fresh(x.astype("float32"))),
            expected, rtol=1e-5)


@pytest.mark.parametrize("pooling, shape", [(None, (6, 6, 1024)),
                                            ("avg", (1024,)),
                                            ("max", (1024,))])
def test_headless(pooling, shape):
    model = GoogLeNet(include_top=False, pooling=pooling)
    assert tuple(model.output.shape[1:]) == shape
    assert "loss3_classifier" not in [layer.name for layer in model.layers]


def test_ablations_keep_the_positions():
    none = GoogLeNet(normalization="none", input_shape=(99, 99, 3),
                     classes=10)
    assert not _lrn_layers(none)
    assert upstream(none, "conv2_3x3_reduce") == "pool1_3x3_s2"
    assert none.count_params() == _paper_params(10)  # LRN has no parameters
    bn = GoogLeNet(normalization="batchnorm", input_shape=(99, 99, 3),
                   classes=10)
    assert [layer.name for layer in layers_of_type(
        bn, keras.layers.BatchNormalization)] == ["pool1_bn1", "conv2_bn2"]
    # gamma, beta, moving mean and variance of 64 and 192 channels
    assert bn.count_params() == _paper_params(10) + 4 * (64 + 192)


def test_smallest_input_builds_and_one_less_is_refused():
    # 61 + 6 -> conv1 31 -> pool1 15 -> pool2 7 -> pool3 3 -> pool4 1
    model = GoogLeNet(include_top=False, input_shape=(61, 61, 3))
    assert tuple(model.output.shape[1:3]) == (1, 1)
    with pytest.raises(ValueError, match=r"at least 61.*input_shape=\(60, 60, 3\)"):
        GoogLeNet(input_shape=(60, 60, 3))
