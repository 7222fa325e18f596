"""keras_lrn._windows: the box and exponential window sums against explicit
loops in float64 NumPy (tests/reference.py), their clamping to the input
and their transposes."""

import keras
import numpy as np
import pytest

from keras_lrn import _dispatch
from keras_lrn import _windows
from tests import reference

# the product the dispatch gives the exponential window on this backend
PRODUCT = _dispatch.MATRIX_PRODUCT.get(keras.backend.backend(), "matmul")


def box_sum_loop(x, axis, before, after):
    """`out[i] = sum(x[i - before : i + after + 1])` along `axis`, zeros
    outside, by an explicit loop."""
    x = np.moveaxis(x, axis, -1)
    out = np.zeros_like(x)
    n = x.shape[-1]
    for i in range(n):
        out[..., i] = x[..., max(0, i - before):min(n, i + after + 1)].sum(-1)
    return np.moveaxis(out, -1, axis)


@pytest.mark.parametrize("length", [1, 3, 7, 20])
@pytest.mark.parametrize("before, after", [(0, 0), (2, 2), (2, 1), (1, 2),
                                           (0, 5), (7, 7), (30, 30)])
def test_box_sum_along_an_axis_matches_the_loop(rng, float64, length, before,
                                                after):
    x = rng.uniform(0.5, 2, (2, length, 3))
    window = _windows.BoxWindow.of(x.shape, before + after + 1,
                                   "within_channel", "channels_last",
                                   "before" if before > after else "after")
    total = keras.ops.convert_to_numpy(window.sum(
        keras.ops.convert_to_tensor(x)))
    expected = box_sum_loop(x, 1, window.before, window.after)
    np.testing.assert_allclose(total, expected, rtol=1e-12)


def test_box_window_is_clamped_to_the_input_and_transposes():
    window = _windows.BoxWindow.of((1, 4, 4, 3), 101, "across_channels",
                                   "channels_last", "after")
    assert (window.axes, window.before, window.after) == ((3,), 2, 2)
    even = _windows.BoxWindow.of((1, 4, 4, 16), 4, "across_channels",
                                 "channels_last", "before")
    assert (even.before, even.after) == (2, 1)
    assert (even.transposed().before, even.transposed().after) == (1, 2)


def test_box_window_refuses_an_unclampable_size():
    with pytest.raises(ValueError, match="size=300"):
        _windows.BoxWindow.of((1, None, None, 3), 300, "within_channel",
                              "channels_last", "after")


def test_shifted_copies_sum_as_the_doubling_sum(rng, float64):
    x = keras.ops.convert_to_tensor(rng.uniform(0.5, 2, (2, 5, 9)))
    for before, after in ((1, 1), (2, 1), (3, 4)):
        shifted = _windows.box_sum_of_shifts(x, 2, before, after)
        expected = box_sum_loop(keras.ops.convert_to_numpy(x), 2, before,
                                after)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(shifted),
                                   expected, rtol=1e-12)


@pytest.mark.parametrize("method", ["matrix", "scan", "auto"])
@pytest.mark.parametrize("channels, axis", [(1, -1), (7, 1), (8, -1),
                                            (200, -1)])
def test_exponential_window_sum_methods_match_the_double_loop(
        rng, float64, method, channels, axis):
    """Both ways of summing, and "auto", against the explicit double loop."""
    data_format = "channels_last" if axis == -1 else "channels_first"
    shape = (2, 3, channels) if axis == -1 else (2, channels, 3)
    x = rng.uniform(0.5, 2, shape)
    squares = keras.ops.convert_to_tensor(x**2)
    window = _windows.ExponentialWindow.of(shape, data_format, method,
                                         product=PRODUCT)
    total = keras.ops.convert_to_numpy(window.sum(
        squares, keras.ops.convert_to_tensor(2.5, dtype="float64")))
    # the reference LRN with alpha 1, beta 1, bias 1 gives x / (1 + total)
    expected = x / reference.exponential_lrn(x, 1.0, 1.0, 1.0, 2.5,
                                             data_format=data_format) - 1.0
    np.testing.assert_allclose(total, expected, rtol=1e-12)
