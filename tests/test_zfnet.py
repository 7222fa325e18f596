"""keras_lrn/applications/zfnet.py: ZFNet (Zeiler & Fergus, 2013) and the
ONNX model zoo's ZFNet-512.

Layer sizes and parameter counts are recomputed here from the paper's
Fig. 3 and from the zoo graph's layer list (tests/architecture.py), not
read from keras_lrn.
"""

import numpy as np
import pytest

import keras

from keras_lrn import LocalResponseNormalization
from keras_lrn.applications import ZFNet
from tests.architecture import (conv_params, dense_params,
                                image_data_format, layers_of_type, upstream)


# Zeiler & Fergus 2013, Fig. 3 (dense connections everywhere).
ZFNET_PAPER_PARAMS = (
    conv_params(7, 3, 96)
    + conv_params(5, 96, 256)
    + conv_params(3, 256, 384)
    + conv_params(3, 384, 384)
    + conv_params(3, 384, 256)
    + dense_params(6 * 6 * 256, 4096)
    + dense_params(4096, 4096)
    + dense_params(4096, 1000)
)

ZFNET_PAPER_SHAPES = {  # Fig. 3 of Zeiler & Fergus
    "conv1": (110, 110, 96), "pool1": (55, 55, 96), "conv2": (26, 26, 256),
    "pool2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
    "conv5": (13, 13, 256), "pool5": (6, 6, 256), "fc6": (4096,),
    "fc7": (4096,), "fc8": (1000,),
}


# The ONNX model zoo's zfnet512 (Caffe2's ZFNet-512): unpadded conv1 7x7/2
# and conv2 5x5/2, 3x3/2 pools rounding down, conv3-conv5 with 512 filters,
# a 2x2/2 last pool and fc7 of 1024 units.
ZFNET512_PARAMS = (
    conv_params(7, 3, 96)
    + conv_params(5, 96, 256)
    + conv_params(3, 256, 512)
    + conv_params(3, 512, 512)
    + conv_params(3, 512, 512)
    + dense_params(6 * 6 * 512, 4096)
    + dense_params(4096, 1024)
    + dense_params(1024, 1000)
)

ZFNET512_SHAPES = {  # (224 - 7) // 2 + 1 = 109, (109 - 3) // 2 + 1 = 54, ...
    "conv1": (109, 109, 96), "pool1": (54, 54, 96), "conv2": (25, 25, 256),
    "pool2": (12, 12, 256), "conv3": (12, 12, 512), "conv5": (12, 12, 512),
    "pool5": (6, 6, 512), "fc6": (4096,), "fc7": (1024,), "fc8": (1000,),
}


def _lrn_layers(model):
    return layers_of_type(model, LocalResponseNormalization)


def test_zfnet_bad_arguments():
    with pytest.raises(ValueError, match="normalization.*'lrn2'"):
        ZFNet(normalization="lrn2")
    with pytest.raises(ValueError, match=r"input_shape.*\(40, 40, 3\)"):
        ZFNet(input_shape=(40, 40, 3))


# --------------------------------------------------------------------------
# ZFNet
# --------------------------------------------------------------------------

def test_zfnet_shapes_and_parameters_match_paper():
    model = ZFNet()
    assert tuple(model.input.shape[1:]) == (224, 224, 3)
    for name, shape in ZFNET_PAPER_SHAPES.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape, name
    assert model.count_params() == ZFNET_PAPER_PARAMS
    # conv -> relu -> pool -> norm (Fig. 3), dense (ungrouped) convolutions
    for i in (1, 2):
        assert upstream(model, f"pool{i}") == f"conv{i}_relu"
        assert upstream(model, f"norm{i}") == f"pool{i}"
    assert tuple(model.get_layer("conv2").kernel.shape) == (5, 5, 96, 256)
    assert tuple(model.get_layer("conv1").strides) == (2, 2)
    for name in ["conv1", "conv2", "conv3", "fc6", "fc8"]:
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model.get_layer(name).bias), 0.0)


def test_zfnet_ablation_and_headless():
    bn = ZFNet(normalization="batchnorm", input_shape=(99, 99, 3), classes=10)
    assert [l.name for l in bn.layers if isinstance(l, keras.layers.BatchNormalization)] == ["bn1", "bn2"]
    assert not _lrn_layers(ZFNet(normalization="none", include_top=False))
    assert tuple(ZFNet(include_top=False, pooling="avg").output.shape) == (None, 256)


def test_zfnet512_shapes_parameters_and_norm_before_pool():
    model = ZFNet(variant="zfnet512")
    assert model.name == "zfnet512"
    assert tuple(model.input.shape[1:]) == (224, 224, 3)
    for name, shape in ZFNET512_SHAPES.items():
        assert tuple(model.get_layer(name).output.shape[1:]) == shape, name
    assert model.count_params() == ZFNET512_PARAMS
    # the zoo graph normalizes before each of the first two pools
    for i in (1, 2):
        assert upstream(model, f"norm{i}") == f"conv{i}_relu"
        assert upstream(model, f"pool{i}") == f"norm{i}"
    assert len(_lrn_layers(model)) == 2


@pytest.mark.parametrize("variant, smallest", [("paper", 53),
                                                ("zfnet512", 59)])
def test_smallest_input_builds_and_one_less_is_refused(variant, smallest):
    # the paper's net: 53 -> conv1 (pad 1, 7x7/2) 25 -> pool1 (same) 13 ->
    # conv2 (5x5/2) 5 -> pool2 3 -> conv3-5 3 -> pool5 (3x3/2, valid) 1;
    # the zoo's: 59 -> 27 -> 13 -> 5 -> 2 -> pool5 (2x2/2) 1
    model = ZFNet(variant=variant, include_top=False,
                  input_shape=(smallest, smallest, 3))
    assert tuple(model.output.shape[1:3]) == (1, 1)
    with pytest.raises(ValueError, match=rf"at least {smallest}.*"
                       rf"input_shape=\({smallest - 1}, {smallest - 1}, 3\)"):
        ZFNet(variant=variant, input_shape=(smallest - 1, smallest - 1, 3))


# --------------------------------------------------------------------------
# channels_first
# --------------------------------------------------------------------------

def test_channels_first_shapes():
    with image_data_format("channels_first"):
        model = ZFNet()
    assert tuple(model.input.shape[1:]) == (3, 224, 224)
    assert tuple(model.get_layer("pool2").output.shape[1:]) == (256, 13, 13)
    assert model.count_params() == ZFNET_PAPER_PARAMS
    for layer in _lrn_layers(model):
        assert layer.data_format == "channels_first"
