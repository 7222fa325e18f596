"""keras_lrn/_operation.py: the LRN function (`local_response_normalization`,
`normalize`) and its `keras.Operation`.

Grouped LRN is checked against the float64 formula (tests/reference.py) run
on each group's channels alone, and the grouping reshape against where each
channel must land; symbolic inputs get the operation's output spec.
"""

import keras
import numpy as np
import pytest

from keras_lrn import LRN
from keras_lrn import _operation
from keras_lrn import ops as lrn_ops
from tests import reference


def test_the_op_function_still_validates_its_arguments():
    with pytest.raises(ValueError, match="size=0"):
        lrn_ops.local_response_normalization(np.ones((1, 2, 2, 3)), size=0)


def test_operation_and_layer_have_different_names():
    assert issubclass(_operation.LRNOperation, keras.Operation)
    assert _operation.LRNOperation.__name__ != LRN.__name__
    assert not hasattr(lrn_ops, "LocalResponseNormalization")


# --- groups: the reshape, and the formula per group ---------------------------

def _per_group(x, groups, data_format, formula):
    """`formula` (channels_last) on each group's channels alone."""
    channel_axis = -1 if data_format == "channels_last" else 1
    parts = np.split(np.asarray(x, np.float64), groups, axis=channel_axis)
    outputs = []
    for part in parts:
        part = np.moveaxis(part, channel_axis, -1)
        outputs.append(np.moveaxis(formula(part), -1, channel_axis))
    return np.concatenate(outputs, axis=channel_axis)


@pytest.mark.parametrize("shape, data_format, groups", [
    ((2, 6, 12), "channels_last", 3),          # rank 3
    ((2, 3, 4, 8), "channels_last", 2),
    ((2, 8, 3, 4), "channels_first", 4),
    ((1, 2, 3, 2, 6), "channels_first", 2),   # rank 5
])
@pytest.mark.parametrize("window", [
    dict(size=3), dict(size=4, even_window_side="before"), dict(size=7),
    dict(window="exponential", window_scale=1.5)], ids=str)
def test_grouped_equals_the_formula_on_each_group(float64, shape,
                                                  data_format, groups,
                                                  window):
    arguments = dict(alpha=2e-2, beta=0.75, bias=1.5, **window)
    x = np.random.default_rng(sum(shape)).uniform(-4, 4, shape)
    if window.get("window") == "exponential":
        def formula(part):
            return reference.exponential_lrn(
                part, arguments["alpha"], arguments["beta"],
                arguments["bias"], arguments["window_scale"])
    else:
        def formula(part):
            return reference.lrn(
                part, window["size"], arguments["alpha"], arguments["beta"],
                arguments["bias"],
                even_window_side=window.get("even_window_side", "after"))
    got = lrn_ops.local_response_normalization(
        x, groups=groups, data_format=data_format, **arguments)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got),
                               _per_group(x, groups, data_format, formula),
                               rtol=1e-12)
    # and the groups matter: ungrouped differs where a window crosses a group
    ungrouped = lrn_ops.local_response_normalization(
        x, data_format=data_format, **arguments)
    assert not np.allclose(keras.ops.convert_to_numpy(ungrouped),
                           keras.ops.convert_to_numpy(got), rtol=1e-9)


@pytest.mark.parametrize("shape, data_format, seen", [
    ((2, 3, 5, 12), "channels_last", (2, 3, 5, 4, 3)),
    ((2, 12, 3, 5), "channels_first", (8, 3, 3, 5)),
])
def test_grouping_gives_each_group_its_own_channel_axis(shape, data_format,
                                                        seen):
    """`compute` sees each group's channels on an axis of their own, in
    order: scaling position i of that axis by i + 1 scales channel c by
    c % (channels // groups) + 1."""
    groups, per_group = 4, 3
    x = np.random.default_rng(0).uniform(1, 2, shape).astype("float32")
    received = []

    def compute(part):
        received.append(tuple(part.shape))
        axis = -1 if data_format == "channels_last" else 1
        scale = np.arange(1, per_group + 1, dtype="float32").reshape(
            [-1 if a == axis % len(part.shape) else 1
             for a in range(len(part.shape))])
        return part * scale

    got = _operation._grouped(keras.ops.convert_to_tensor(x), shape, groups,
                              data_format, compute)
    assert received == [seen]
    channel_axis = -1 if data_format == "channels_last" else 1
    scale = (np.arange(shape[channel_axis], dtype="float32") % per_group
             + 1).reshape(
        [-1 if a == channel_axis % len(shape) else 1
         for a in range(len(shape))])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), x * scale)


def test_groups_must_divide_the_channels_of_the_call():
    with pytest.raises(ValueError, match="8 channels cannot be split into 3"):
        lrn_ops.local_response_normalization(np.ones((1, 2, 2, 8), "float32"),
                                             groups=3)


# --- empty and symbolic inputs -----------------------------------------------

@pytest.mark.parametrize("shape", [(0, 3, 3, 4), (2, 0, 3, 4), (2, 3, 3, 0)])
def test_an_empty_input_returns_itself(shape):
    x = np.zeros(shape, "float32")
    y = lrn_ops.local_response_normalization(x, size=5)
    assert tuple(y.shape) == shape
    assert keras.backend.standardize_dtype(y.dtype) == "float32"


def test_symbolic_input_gets_the_operations_output_spec(rng):
    inputs = keras.Input((3, 4, 6), dtype="float32")
    outputs = lrn_ops.local_response_normalization(inputs, size=3, alpha=1e-2,
                                                   groups=2)
    assert isinstance(outputs, keras.KerasTensor)
    assert tuple(outputs.shape) == (None, 3, 4, 6)
    assert outputs.dtype == "float32"
    assert isinstance(outputs._keras_history.operation,
                      _operation.LRNOperation)
    model = keras.Model(inputs, outputs)
    x = rng.uniform(-3, 3, (2, 3, 4, 6)).astype("float32")
    expected = _per_group(x, 2, "channels_last",
                          lambda part: reference.lrn(part, 3, 1e-2, 0.75, 2.0))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected,
                               rtol=1e-5)


def test_symbolic_input_is_checked_when_traced():
    with pytest.raises(ValueError, match=r"input shape=\(None, 8\)"):
        lrn_ops.local_response_normalization(keras.Input((8,)))
    with pytest.raises(ValueError, match="needs a known channel dimension"):
        lrn_ops.local_response_normalization(keras.Input((4, 4, None)))
