"""The one value gate: every `alpha`, `beta`, `bias` and `window_scale`
LRN uses, however it arrives (an argument, a config, a `.keras` or `.h5`
weight, `set_weights`), is checked here, by `validate_for_compute_dtype`,
against the dtype the layer computes and stores it in.

The bounds (`parameter_bounds`, `smallest_window_scale`) come from each
float dtype's smallest normal and largest number, read once. The argument
rules that say what kind of value an argument takes are
`keras_lrn._arguments`.
"""

import collections
import math

import keras
import numpy as np

from keras_lrn import _arguments

__all__ = ["parameter_bounds", "smallest_window_scale",
           "validate_for_compute_dtype"]


def _numpy_dtype(dtype):
    """The NumPy dtype of a float dtype name (bfloat16 from `ml_dtypes`,
    which Keras depends on)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _rounded(value, dtype):
    """`value` rounded to `dtype`, as a Python float (inf beyond its
    range)."""
    with np.errstate(over="ignore"):
        return float(np.asarray(value, np.float64).astype(_numpy_dtype(dtype)))


_Limits = collections.namedtuple("_Limits", ["tiny", "max"])


def _limits_of(dtype):
    import ml_dtypes

    info = ml_dtypes.finfo(_numpy_dtype(dtype))
    return _Limits(float(info.tiny), float(info.max))


# The smallest normal and the largest number of each float dtype, read once:
# the gate runs on every call of the op, also where `torch.compile` traces
# it, and Dynamo cannot trace NumPy's `finfo`.
_LIMITS = {dtype: _limits_of(dtype)
           for dtype in _arguments.FLOAT_DTYPES}


def _finfo(dtype):
    return _LIMITS[keras.backend.standardize_dtype(dtype)]


def smallest_window_scale(dtype):
    """The smallest `window_scale` allowed in the compute dtype of `dtype`.

    Below it the weight of a neighbouring channel, `exp(-1 / window_scale)`,
    is no longer a normal number (it reaches denormals, then 0): the window
    would no longer be a decaying window, and its derivative
    `exp(-d / s) * d / s**2` would be computed from underflowed factors. At
    the bound `1 / window_scale = -log(smallest normal)`: about 0.01145 in
    float32, 0.00141 in float64.
    """
    return 1.0 / -math.log(_finfo(_arguments.compute_dtype_of(dtype)).tiny)


def parameter_bounds(dtype):
    """The bounds `validate_for_compute_dtype` holds the parameters to in
    the layer's dtype `dtype`, as a dict of `(smallest, largest)` pairs.

    With `tiny` and `max` the smallest normal and the largest number of
    `dtype` (float16: 6.104e-05 and 65504; bfloat16: 1.175e-38 and
    3.39e+38; float32: 1.175e-38 and 3.403e+38):

    - `alpha`: 0, or `tiny` to `max / 2`;
    - `bias`: `tiny` to `max / 2`;
    - `beta`: 0 to `max / (2 * -log(tiny))`, so that `beta * log(t)` is
      finite for every `t` the dtype holds (float16: 3375, float32:
      1.95e+36);
    - `window_scale`: `smallest_window_scale(dtype)` to `max / 2`;

    and, together, `bias ** -beta` (the largest scale LRN applies) and
    `2 * alpha * beta` (the gradient's factor) at most `max / 2`.
    """
    info = _finfo(keras.backend.standardize_dtype(dtype))
    tiny, largest = float(info.tiny), float(info.max)
    return {
        "alpha": (tiny, largest / 2),
        "beta": (0.0, largest / (2 * -math.log(tiny))),
        "bias": (tiny, largest / 2),
        "window_scale": (smallest_window_scale(dtype), largest / 2),
    }


def validate_for_compute_dtype(alpha, beta, bias, dtype, window_scale=None,
                               source=None, variable_dtype=None, logs=None):
    """The one gate every value of `alpha`, `beta`, `bias` and
    `window_scale` passes, however it reaches LRN: the layer's constructor
    and `build`, `from_config` and the converters (through the
    constructor), a `.keras` file (`load_own_variables`), a legacy `.h5`
    file (`finalize_state`, after Keras assigns its weights),
    `set_weights`, `keras_lrn.legacy` and `keras_lrn.ops`.

    The values are checked as the layer will use them, against the
    layer's dtype `dtype` (its compute dtype: float16, bfloat16, float32 or
    float64; see `parameter_bounds`). A learned parameter is held as its
    logarithm in a weight of `variable_dtype` and used as `exp(weight)`
    computed in that dtype: its logarithm (from `logs`, a file's stored
    values, or `log(value)`) is first rounded to `variable_dtype`, then
    exponentiated and rounded again, and the result must be a normal number
    of both dtypes (bfloat16 rounds log(bias) = -87.30 to -87.5, whose
    `exp` is no longer normal).

    Every finite input then gives a finite output, never NaN: the
    denominator `bias + alpha * sum(x ** 2)` is at least `bias`, a normal
    number, so `t ** -beta` is at most `bias ** -beta`, finite with room to
    spare; where `alpha` times the window's sum exceeds the compute dtype,
    `t` is infinite and the output 0, the formula's limit.

    Args:
        alpha, beta, bias, window_scale: The values (Python numbers).
        dtype: The layer's compute dtype (or the input's, for the op).
        source: Where the values come from, for the message (e.g. "the
            weights loaded from 'model.keras'"); `None` for arguments.
        variable_dtype: The dtype of the learned weights; `None` (no
            learned parameter) or the dtype.
        logs: A dict from the names of the learned parameters to their
            logarithms (the weights' values); `None` for no learned
            parameter.

    Returns:
        A dict of the values in use, after the rounding of the learned
        ones.

    Raises:
        ValueError: naming the value and the bound.
    """
    dtype = keras.backend.standardize_dtype(dtype)
    where = f" ({source})" if source else ""
    values = {"alpha": alpha, "beta": beta, "bias": bias,
              "window_scale": window_scale}
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(
                f"`{name}`{where} must be a finite number. "
                f"Received: {name}={value!r}"
            )
    if logs:
        variable_dtype = keras.backend.standardize_dtype(variable_dtype)
        variable_info = _finfo(variable_dtype)
        variable_tiny = float(variable_info.tiny)
        for name, log_value in logs.items():
            stored = _rounded(log_value, variable_dtype)
            if not math.isfinite(stored):
                raise ValueError(
                    f"The learned `{name}`{where} is held as its logarithm "
                    f"in a {variable_dtype} weight, which must be finite. "
                    f"Received: log({name})={log_value!r}"
                )
            with np.errstate(over="ignore", under="ignore"):
                value = _rounded(np.exp(np.float64(stored)), variable_dtype)
            if not variable_tiny <= value <= float(variable_info.max):
                raise ValueError(
                    f"The learned `{name}`{where} is exp of its {variable_dtype}"
                    f" weight, which must be a normal {variable_dtype} number"
                    f" (between {variable_tiny:.7g} and "
                    f"{float(variable_info.max):.7g}). Received: "
                    f"log({name})={log_value!r}, rounded to {stored!r} in "
                    f"{variable_dtype}: {name}={value!r}"
                )
            if name == "window_scale":
                # the layer keeps a learned scale at least this (see
                # `_learned_weights.parameter_from_weight`)
                value = max(value, smallest_window_scale(dtype))
            values[name] = value
    bounds = parameter_bounds(dtype)

    def refuse(name, bound_text):
        raise ValueError(
            f"`{name}`{where} must be {bound_text}: the layer computes in "
            f"{dtype}. Received: {name}={values[name]!r}"
        )

    for name in ("alpha", "bias", "beta", "window_scale"):
        value = values[name]
        if value is None:
            continue
        smallest, largest = bounds[name]
        zero_allowed = name in ("alpha", "beta")
        if zero_allowed and value == 0:
            continue
        if not smallest <= value <= largest:
            lower = (f"0 or between {smallest:.7g}" if name == "alpha"
                     else f"between {smallest:.7g}")
            refuse(name, f"{lower} and {largest:.7g} in {dtype}"
                   + (" (below, a neighbouring channel's weight "
                      "exp(-1 / window_scale) underflows)"
                      if name == "window_scale" else ""))
    largest = float(_finfo(dtype).max)
    alpha, beta, bias = values["alpha"], values["beta"], values["bias"]
    if 2 * alpha * beta > largest / 2:
        raise ValueError(
            f"`alpha` and `beta`{where} must keep 2 * alpha * beta (the "
            f"gradient's factor) at most {largest / 2:.7g} in {dtype}. "
            f"Received: alpha={alpha!r}, beta={beta!r}"
        )
    if -beta * math.log(bias) > math.log(largest / 2):
        raise ValueError(
            f"`bias` and `beta`{where} must keep bias ** -beta (the "
            f"largest scale LRN applies) at most {largest / 2:.7g} in "
            f"{dtype}. Received: bias={bias!r}, beta={beta!r}"
        )
    return values
