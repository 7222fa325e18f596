"""`keras_lrn._learned_weights`: a learned parameter held as its logarithm.

What a file or `set_weights` may put into a layer's learned weights is
tested through the layer in tests/test_hostile_inputs.py and
tests/test_learned.py; here the module's functions, called directly.
Expected values come from `math` and NumPy, never from the module.
"""

import math

import keras
import ml_dtypes
import numpy as np
import pytest

from keras_lrn import _learned_weights

EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23,
       "float64": 2.0**-52}


@pytest.mark.parametrize("dtype", sorted(EPS))
@pytest.mark.parametrize("value", [1e-4, 0.75, 2.0, 40.0])
def test_a_weight_holds_the_log_and_gives_the_parameter_back(
        float64, dtype, value):
    assert _learned_weights.log_of(value) == math.log(value)
    weight = keras.ops.convert_to_tensor(
        np.float64(_learned_weights.log_of(value)), dtype=dtype)
    parameter = _learned_weights.parameter_from_weight("alpha", weight, dtype)
    assert keras.backend.standardize_dtype(parameter.dtype) == dtype
    # the log rounded to the dtype (relative error eps * |log|), then exp
    # rounded once more
    rtol = EPS[dtype] * (abs(math.log(value)) + 2)
    assert _learned_weights.python_float(parameter) == pytest.approx(
        value, rel=rtol)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_only_the_window_scale_is_kept_at_its_smallest(float64, dtype):
    smallest = 1 / -math.log(float(np.finfo(dtype).tiny))
    weight = keras.ops.convert_to_tensor(math.log(smallest / 10), dtype=dtype)
    scale = _learned_weights.python_float(
        _learned_weights.parameter_from_weight("window_scale", weight, dtype))
    assert scale == pytest.approx(smallest, rel=1e-6)
    alpha = _learned_weights.python_float(
        _learned_weights.parameter_from_weight("alpha", weight, dtype))
    assert alpha == pytest.approx(smallest / 10, rel=1e-6)


def test_stored_logs_take_one_float_per_weight_in_any_float_dtype():
    weights = [np.float16(-2.0), ml_dtypes.bfloat16(0.5), np.float64(1.25)]
    assert _learned_weights.stored_logs(
        ("alpha", "beta", "bias"), weights, "lrn", "given to set_weights") == {
            "alpha": -2.0, "beta": 0.5, "bias": 1.25}


@pytest.mark.parametrize("weight, match", [
    (np.int32(1), r"weight `alpha` of layer 'lrn' \(loaded from the file\) "
                  r".*must be a float.*dtype int32"),
    (np.bool_(True), r"must be a float.*dtype bool"),
    (np.zeros(2, np.float32), r"holds one number.*shape \(2,\)"),
])
def test_stored_logs_refuse_other_weights_naming_them(weight, match):
    with pytest.raises(ValueError, match=match):
        _learned_weights.stored_logs(("alpha",), [weight], "lrn",
                                     "loaded from the file")


def test_check_values_uses_the_learned_values_and_keeps_the_others():
    initial = {"alpha": 1e-4, "beta": 0.75, "bias": 2.0, "window_scale": None}
    values = _learned_weights.check_values(
        initial, {"beta": math.log(0.5)}, "float32", "float32")
    assert values["alpha"] == 1e-4 and values["bias"] == 2.0
    assert values["beta"] == pytest.approx(0.5, rel=1e-7)
    with pytest.raises(ValueError, match="`bias`"):
        _learned_weights.check_values(
            initial, {"bias": math.log(1e-40)}, "float32", "float32")


def test_weights_as_numpy_reads_bfloat16_through_float32(float64):
    weights = [keras.Variable(np.float32(-1.5), dtype=dtype)
               for dtype in ("bfloat16", "float16", "float64")]
    arrays = _learned_weights.weights_as_numpy(weights)
    assert [array.dtype for array in arrays] == [
        np.float32, np.float16, np.float64]
    assert [float(array) for array in arrays] == [-1.5, -1.5, -1.5]


def test_initial_logs_are_the_logs_of_the_learned_ones_only():
    initial = {"alpha": 1e-4, "beta": 0.75, "bias": 2.0, "window_scale": 3.0}
    assert _learned_weights.initial_logs(initial, ("bias", "alpha")) == {
        "bias": math.log(2.0), "alpha": math.log(1e-4)}
    assert _learned_weights.initial_logs(initial, ()) == {}


def test_created_weights_start_at_the_logs_and_read_back_the_values(float64):
    owner = keras.layers.Layer(dtype="float32")
    initial = {"alpha": 1e-4, "beta": 0.75, "bias": 2.0, "window_scale": None}
    weights = _learned_weights.create_weights(
        owner.add_weight, initial, ("alpha", "bias"))
    assert list(weights) == ["alpha", "bias"]
    assert [weight.name for weight in owner.weights] == ["alpha", "bias"]
    for name, weight in weights.items():
        assert tuple(weight.shape) == () and weight.trainable
        assert float(keras.ops.convert_to_numpy(weight.value)) == float(
            np.float32(math.log(initial[name])))
    values = _learned_weights.values_in_use(initial, weights, "float32")
    assert values["beta"] == 0.75 and values["window_scale"] is None
    rtol = EPS["float32"] * (abs(math.log(1e-4)) + 2)
    for name in ("alpha", "bias"):
        assert float(keras.ops.convert_to_numpy(values[name])) == (
            pytest.approx(initial[name], rel=rtol))
        assert _learned_weights.value_in_use(
            name, initial, weights, "float32") == pytest.approx(
                initial[name], rel=rtol)
    assert _learned_weights.value_in_use("beta", initial, weights,
                                         "float32") == 0.75
    weights["bias"].assign(5.0)
    assert _learned_weights.value_in_use(
        "bias", initial, weights, "float32") == pytest.approx(
            math.exp(5.0), rel=EPS["float32"] * 7)
    _learned_weights.reset_weights(weights, initial)
    assert float(keras.ops.convert_to_numpy(weights["bias"].value)) == float(
        np.float32(math.log(2.0)))


def test_check_stored_names_the_layer_the_source_and_every_log():
    initial = {"alpha": 1e-4, "beta": 0.75, "bias": 2.0, "window_scale": None}
    names = ("alpha", "bias")
    check = lambda weights: _learned_weights.check_stored(  # noqa: E731
        weights, names, initial, "float32", "float32", "lrn",
        "loaded from the file")
    assert check([]) is None
    check([np.float32(math.log(1e-3)), np.float32(math.log(3.0))])
    # exp(-100) is below float32's smallest normal, 1.18e-38
    with pytest.raises(ValueError, match=(
            r"weights of layer 'lrn' loaded from the file, which hold "
            r"log\(alpha\)=-2\.0, log\(bias\)=-100\.0")):
        check([np.float32(-2.0), np.float32(-100.0)])
    with pytest.raises(ValueError, match=r"weight `bias` .*must be a float"):
        check([np.float32(-2.0), np.int64(1)])
