"""keras_lrn.applications.imagenet_utils.preprocess_input: Caffe's convention.

Checked on the current Keras backend (run the suite under each
KERAS_BACKEND) against a float32 NumPy reference written from the convention
(RGB -> BGR, minus the ImageNet mean pixel, no scaling) and against Keras's
own `preprocess_input(mode="caffe")`, bit for bit, in both data formats,
ranks 3 and 4, for every input dtype an image comes in.
"""

import numpy as np
import pytest

import keras
from keras.applications import imagenet_utils as keras_imagenet_utils

from keras_lrn.applications import preprocess_input

MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)
FORMATS = {"channels_last": -1, "channels_first": -3}
DTYPES = ["uint8", "int32", "float16", "bfloat16", "float32", "float64"]


def images(shape, seed=0):
    """RGB images with integer values in [0, 255] (exact in every dtype)."""
    return np.random.default_rng(seed).integers(0, 256, shape).astype("float32")


def reference(rgb, data_format):
    """Caffe's convention in float32, from its definition."""
    axis = FORMATS[data_format]
    bgr = np.flip(rgb.astype(np.float32), axis=axis)
    shape = [1] * rgb.ndim
    shape[axis] = 3
    return bgr - MEAN_BGR.reshape(shape)


def shape_of(rank, data_format):
    spatial = (5, 4)
    per_image = spatial + (3,) if data_format == "channels_last" else (3,) + spatial
    return per_image if rank == 3 else (2,) + per_image


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("data_format", sorted(FORMATS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_tensor_gives_the_reference_and_keras_output(dtype, data_format,
                                                       rank, float64):
    rgb = images(shape_of(rank, data_format))
    x = keras.ops.cast(keras.ops.convert_to_tensor(rgb), dtype)
    got = preprocess_input(x, data_format=data_format)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    got = keras.ops.convert_to_numpy(got)
    np.testing.assert_array_equal(got, reference(rgb, data_format))
    # Keras's own, given the float32 tensor it expects
    keras_out = keras_imagenet_utils.preprocess_input(
        keras.ops.cast(x, "float32"), data_format=data_format, mode="caffe")
    np.testing.assert_array_equal(got, keras.ops.convert_to_numpy(keras_out))


@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("data_format", sorted(FORMATS))
@pytest.mark.parametrize("dtype", ["uint8", "int32", "float16", "float32",
                                   "float64"])
def test_a_numpy_array_gives_the_reference_and_is_left_unchanged(
        dtype, data_format, rank):
    rgb = images(shape_of(rank, data_format), seed=1)
    x = rgb.astype(dtype)
    before = x.copy()
    got = preprocess_input(x, data_format=data_format)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    assert got.flags.c_contiguous  # torch.from_numpy takes it
    np.testing.assert_array_equal(got, reference(rgb, data_format))
    np.testing.assert_array_equal(x, before)  # Keras's own subtracts in place
    keras_out = keras_imagenet_utils.preprocess_input(
        x.astype("float32"), data_format=data_format, mode="caffe")
    np.testing.assert_array_equal(got, keras_out)


def test_a_nested_list_is_an_array():
    rgb = images((4, 4, 3), seed=2)
    np.testing.assert_array_equal(
        preprocess_input(rgb.tolist(), data_format="channels_last"),
        reference(rgb, "channels_last"))


def test_the_default_data_format_is_keras_config(monkeypatch):
    rgb = images(shape_of(4, "channels_first"), seed=3)
    monkeypatch.setattr(keras.config, "image_data_format",
                        lambda: "channels_first")
    np.testing.assert_array_equal(preprocess_input(rgb),
                                  reference(rgb, "channels_first"))


@pytest.mark.parametrize("shape, data_format, match", [
    ((2, 4, 4, 2), "channels_last", r"x.shape=\(2, 4, 4, 2\)"),
    ((2, 4, 4, 3), "channels_first", r"x.shape=\(2, 4, 4, 3\)"),
    ((4, 3), "channels_last", r"rank 3 or 4"),
    ((1, 2, 4, 4, 3), "channels_last", r"rank 3 or 4"),
    ((2, 4, 4, 3), "nhwc", r"data_format='nhwc'"),
])
def test_bad_input_is_named(shape, data_format, match):
    with pytest.raises(ValueError, match=match):
        preprocess_input(np.zeros(shape, "float32"), data_format=data_format)
