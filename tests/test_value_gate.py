"""`keras_lrn._value_gate`: the one gate's bounds, from each dtype's limits.

The layer's doors to the gate (constructor, configs, files, `set_weights`)
are tested in tests/test_hostile_inputs.py; here the gate itself, called
directly. Expected values come from NumPy's and ml_dtypes' `finfo` and the
formulas the docstrings state, never from the module.
"""

import math

import ml_dtypes
import numpy as np
import pytest

from keras_lrn import _value_gate

FINFO = {"float16": np.finfo(np.float16),
         "bfloat16": ml_dtypes.finfo(ml_dtypes.bfloat16),
         "float32": np.finfo(np.float32),
         "float64": np.finfo(np.float64)}
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


@pytest.mark.parametrize("dtype", sorted(FINFO))
def test_parameter_bounds_follow_the_dtypes_limits(dtype):
    tiny, largest = float(FINFO[dtype].tiny), float(FINFO[dtype].max)
    bounds = _value_gate.parameter_bounds(dtype)
    assert bounds["alpha"] == bounds["bias"] == (tiny, largest / 2)
    assert bounds["beta"] == (0.0, largest / (2 * -math.log(tiny)))
    assert bounds["window_scale"][1] == largest / 2


def test_the_documented_figures():
    """The figures `parameter_bounds` and `smallest_window_scale` quote."""
    assert round(_value_gate.parameter_bounds("float16")["beta"][1]) == 3375
    assert f"{_value_gate.parameter_bounds('float32')['beta'][1]:.3g}" == (
        "1.95e+36")
    assert round(_value_gate.smallest_window_scale("float32"), 5) == 0.01145
    assert round(_value_gate.smallest_window_scale("float64"), 5) == 0.00141


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_the_smallest_window_scale_is_the_compute_dtypes(dtype):
    """Half precision computes in float32: its window keeps float32's
    bound, where `exp(-1 / window_scale)` is float32's smallest normal."""
    smallest = _value_gate.smallest_window_scale(dtype)
    assert smallest == pytest.approx(1 / -math.log(FLOAT32_TINY), rel=1e-12)
    assert math.exp(-1 / smallest) == pytest.approx(FLOAT32_TINY, rel=1e-9)


def test_one_window_scale_below_the_smallest_is_refused():
    smallest = _value_gate.smallest_window_scale("float32")
    values = _value_gate.validate_for_compute_dtype(
        1e-4, 0.75, 2.0, "float32", window_scale=smallest)
    assert values["window_scale"] == smallest
    with pytest.raises(ValueError, match="window_scale"):
        _value_gate.validate_for_compute_dtype(
            1e-4, 0.75, 2.0, "float32", window_scale=smallest * (1 - 1e-6))


def test_a_learned_value_is_checked_from_its_log_rounded_to_its_weight():
    """The docstring's case: log(bias) = -87.30 is normal in float32
    (exp(-87.30) = 1.2e-38), but bfloat16 rounds it to -87.5, whose exp
    (1.0e-38) is below bfloat16's smallest normal."""
    logs = {"bias": -87.30}
    assert math.exp(-87.5) < float(FINFO["bfloat16"].tiny) < math.exp(-87.30)
    values = _value_gate.validate_for_compute_dtype(
        1e-4, 0.75, 2.0, "float32", variable_dtype="float32", logs=logs)
    assert values["bias"] == pytest.approx(math.exp(-87.30), rel=1e-6)
    with pytest.raises(ValueError, match=r"bias.*bfloat16.*-87\.5"):
        _value_gate.validate_for_compute_dtype(
            1e-4, 0.75, 2.0, "float32", variable_dtype="bfloat16", logs=logs)


@pytest.mark.parametrize("dtype", sorted(FINFO))
def test_values_at_the_bounds_pass_and_beyond_them_are_refused(dtype):
    bounds = _value_gate.parameter_bounds(dtype)
    for name, index, factor in (("alpha", 0, 0.5), ("bias", 1, 2.0),
                                ("beta", 1, 2.0)):
        values = {"alpha": 1e-4, "beta": 0.75, "bias": 2.0}
        values[name] = bounds[name][index]
        if name == "beta":
            values["bias"] = 1.0  # bias ** -beta stays 1
            values["alpha"] = 0.0
        _value_gate.validate_for_compute_dtype(
            values["alpha"], values["beta"], values["bias"], dtype)
        values[name] *= factor
        with pytest.raises(ValueError, match=f"`{name}`"):
            _value_gate.validate_for_compute_dtype(
                values["alpha"], values["beta"], values["bias"], dtype)
