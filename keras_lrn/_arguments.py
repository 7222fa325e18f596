"""The argument rules of LRN: each argument is checked here, once.

The layer, the functional op, the converters and the legacy loader all
check their values through these functions, so one rule holds everywhere:
an integer argument (`size`, a radius) takes a Python or NumPy integer; a
real argument (`alpha`, `beta`, `bias`, `window_scale`) takes a Python or
NumPy integer or float. Booleans (`True`, `np.True_`) are neither, and a
float is never an integer, not even `5.0` or `np.float32(5.0)`.
"""

import collections
import math
import numbers

import keras
import numpy as np


MODES = ("across_channels", "within_channel")
DATA_FORMATS = ("channels_last", "channels_first")
EVEN_WINDOW_SIDES = ("after", "before")
IMPLEMENTATIONS = ("auto", "native", "portable")
WINDOWS = ("box", "exponential")
HALF_PRECISION_DTYPES = ("float16", "bfloat16")
FLOAT_DTYPES = HALF_PRECISION_DTYPES + ("float32", "float64")
# The parameters a layer can learn, in the order of its weights.
PARAMETERS = ("alpha", "beta", "bias", "window_scale")
LEARNABLE_BY_DEFAULT = ("alpha", "beta", "bias")


class InputDTypeError(TypeError, ValueError):
    """An input whose dtype LRN cannot normalize (not a float).

    A `TypeError` by nature, and a `ValueError` like Keras's own input checks,
    so that either `except` clause catches it.
    """


def integer_argument(name, value, minimum, prefix=""):
    """`value` as an `int` if it is a Python or NumPy integer (not a bool)
    of at least `minimum`; otherwise a `ValueError` naming `name`."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(
            f"{prefix}Argument `{name}` must be an integer >= {minimum} "
            "(a Python or NumPy integer; not a bool or a float). "
            f"Received: {name}={value!r}"
        )
    return int(value)


def real_argument(name, value, minimum, minimum_allowed=True, prefix=""):
    """`value` as a `float` if it is a finite Python or NumPy real number
    (not a bool) of at least `minimum` (above it, without
    `minimum_allowed`); otherwise a `ValueError` naming `name`."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < minimum
        or value == minimum and not minimum_allowed
    ):
        bound = ">=" if minimum_allowed else ">"
        raise ValueError(
            f"{prefix}Argument `{name}` must be a finite number {bound} "
            f"{minimum} (a Python or NumPy integer or float; not a bool). "
            f"Received: {name}={value!r}"
        )
    return float(value)


def _choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"Argument `{name}` must be one of {allowed}. "
            f"Received: {name}={value!r}"
        )
    return value


def learned_parameters(learnable, window):
    """The names of the parameters `learnable` asks to learn, a tuple in
    `PARAMETERS` order (empty for `learnable=False`).

    Raises:
        ValueError: naming `learnable`.
    """
    if learnable is True:
        return LEARNABLE_BY_DEFAULT
    if learnable is False:
        return ()
    if (
        isinstance(learnable, (tuple, list))
        and learnable
        and all(isinstance(name, str) and name in PARAMETERS
                for name in learnable)
        and len(set(learnable)) == len(learnable)
    ):
        if "window_scale" in learnable and window != "exponential":
            raise ValueError(
                "Only window='exponential' has a `window_scale` to learn. "
                f"Received: learnable={learnable!r} with window={window!r}"
            )
        return tuple(name for name in PARAMETERS if name in learnable)
    raise ValueError(
        "Argument `learnable` must be False, True (alpha, beta and bias) "
        f"or a non-empty list of distinct names from {PARAMETERS}. "
        f"Received: learnable={learnable!r}"
    )


def validate_arguments(
    size=5, alpha=1e-4, beta=0.75, bias=2.0, mode="across_channels",
    data_format=None, even_window_side="after", implementation="auto",
    learnable=False, window="box", window_scale=None, groups=1,
):
    """Checks every argument of LRN; returns them as plain Python values.

    Returns:
        A dict of the arguments, named as here, plus `learned` (the names
        of the learned parameters, see `learned_parameters`): `size` and
        `groups` `int`s, `alpha`, `beta`, `bias` and `window_scale` floats (or
        `None`), `data_format` resolved from `None`.

    Raises:
        ValueError: naming the first argument whose value is not allowed.
    """
    arguments = dict(
        size=integer_argument("size", size, 1),
        alpha=real_argument("alpha", alpha, 0.0),
        beta=real_argument("beta", beta, 0.0),
        bias=real_argument("bias", bias, 0.0, minimum_allowed=False),
        mode=_choice("mode", mode, MODES),
        even_window_side=_choice("even_window_side", even_window_side,
                                 EVEN_WINDOW_SIDES),
        implementation=_choice("implementation", implementation,
                               IMPLEMENTATIONS),
        window=_choice("window", window, WINDOWS),
    )
    if data_format is None:
        data_format = keras.config.image_data_format()
    arguments["data_format"] = _choice(
        "data_format", data_format, DATA_FORMATS)
    if window == "exponential":
        window_scale = real_argument(
            "window_scale", window_scale, 0.0, minimum_allowed=False,
            prefix="With window='exponential', the window's decay length in "
            "channels: ")
        if mode != "across_channels":
            raise ValueError(
                "window='exponential' decays across channels: it needs "
                f"mode='across_channels'. Received: mode={mode!r}"
            )
    elif window_scale is not None:
        raise ValueError(
            "Argument `window_scale` is used only with window='exponential'; "
            f"leave it None for window={window!r}. "
            f"Received: window_scale={window_scale!r}"
        )
    arguments["window_scale"] = window_scale
    learned = learned_parameters(learnable, window)
    for name in ("alpha", "beta"):
        if name in learned and arguments[name] == 0:
            raise ValueError(
                f"A learned `{name}` is stored as its logarithm and must "
                f"start > 0. Received: {name}={arguments[name]!r} with "
                f"learnable={learnable!r}"
            )
    if implementation == "native" and (learned or window != "box"):
        raise ValueError(
            "implementation='native' calls tf.nn.local_response_normalization,"
            " which has neither learned parameters nor an exponential window."
            f" Received: implementation={implementation!r} with "
            f"learnable={learnable!r}, window={window!r}"
        )
    arguments["groups"] = groups_argument(groups, mode, implementation)
    arguments["learned"] = learned
    return arguments


def groups_argument(groups, mode, implementation):
    """`groups` as an `int`: a positive integer, and 1 in mode
    "within_channel" (whose window never leaves its channel, so there is
    nothing to keep inside a group) and with implementation="native"
    (`tf.nn.local_response_normalization`'s window spans every channel).

    Raises:
        ValueError: naming `groups`.
    """
    groups = integer_argument("groups", groups, 1)
    if groups > 1 and mode != "across_channels":
        raise ValueError(
            "Argument `groups` keeps the across-channel window inside each "
            "group of channels; in mode 'within_channel' every window is "
            "already inside one channel, so groups must be 1. "
            f"Received: groups={groups!r} with mode={mode!r}"
        )
    if groups > 1 and implementation == "native":
        raise ValueError(
            "implementation='native' calls tf.nn.local_response_normalization,"
            " whose window spans every channel: it cannot keep windows inside "
            "groups. Use implementation='auto' or 'portable'. "
            f"Received: groups={groups!r} with implementation='native'"
        )
    return groups


def validate_groups_divide_channels(shape, groups, data_format):
    """Checks that `groups` splits the channel axis of an input of `shape`
    into equal groups.

    Raises:
        ValueError: naming `groups`, the channel count and the input shape.
    """
    channels = shape[-1 if data_format == "channels_last" else 1]
    if groups > 1 and channels is not None and channels % groups:
        raise ValueError(
            f"Argument `groups` must divide the number of channels into "
            f"equal groups: {channels} channels cannot be split into "
            f"{groups} groups. Received: groups={groups}, input "
            f"shape={tuple(shape)}"
        )


def compute_dtype_of(dtype):
    """The dtype LRN computes in for inputs of `dtype`: float32 for half
    precision, the dtype itself otherwise."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in HALF_PRECISION_DTYPES else dtype


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
_LIMITS = {dtype: _limits_of(dtype) for dtype in FLOAT_DTYPES}


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
    return 1.0 / -math.log(_finfo(compute_dtype_of(dtype)).tiny)


def parameter_bounds(dtype):
    """The bounds `validate_for_compute_dtype` holds the parameters to in
    the layer's dtype `dtype`, as a dict of `(smallest, largest)` pairs.

    With `tiny` and `max` the smallest normal and the largest number of
    `dtype` (float16: 6.104e-05 and 65504; bfloat16: 1.175e-38 and
    3.39e+38; float32: 1.175e-38 and 3.403e+38):

    - `alpha`: 0, or `tiny` to `max / 2`;
    - `bias`: `tiny` to `max / 2`;
    - `beta`: 0 to `max / (2 * -log(tiny))`, so that `beta * log(t)` is
      finite for every `t` the dtype holds (float16: 3373, float32:
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
                # `layer.parameter_from_weight`)
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


def static_shape(x):
    """`x.shape` as a tuple (`None` for unknown dimensions).

    Raises:
        ValueError: for an input of unknown rank (a `tf.function` traced
            with `tf.TensorSpec(shape=None)`).
    """
    if getattr(x.shape, "rank", 0) is None:
        raise ValueError(
            "LocalResponseNormalization needs an input of known rank (>= 3: "
            "batch, spatial axes, channels) to place its window. Received: "
            "an input of unknown rank"
        )
    return tuple(x.shape)


def validate_input(shape, dtype, mode, data_format):
    """Checks an input's shape and dtype against the layer's needs.

    Raises:
        ValueError: for a rank below 3, or an unknown channel dimension in
            across-channel mode.
        InputDTypeError: for a dtype that is not a float.
    """
    if len(shape) < 3:
        hint = (
            " A 2-D input (batch, features) has no spatial axis and no "
            "channel axis to normalize across: reshape it to (batch, 1, "
            "features) to normalize across its features as channels."
            if len(shape) == 2 else ""
        )
        raise ValueError(
            "LocalResponseNormalization expects inputs of rank >= 3 "
            f"(batch, at least one spatial axis, channels).{hint} "
            f"Received: input shape={tuple(shape)}"
        )
    channel_axis = -1 if data_format == "channels_last" else 1
    if mode == "across_channels" and shape[channel_axis] is None:
        raise ValueError(
            "LocalResponseNormalization in mode 'across_channels' needs a "
            f"known channel dimension (axis {channel_axis} for data_format="
            f"'{data_format}'). Received: input shape={tuple(shape)}"
        )
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise InputDTypeError(
            "LocalResponseNormalization expects a float input, one of "
            f"{FLOAT_DTYPES}. Received: input dtype={dtype}"
        )
