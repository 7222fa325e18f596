"""The argument rules of LRN: each argument is checked here, once.

The layer, the functional op, the converters and the legacy loader all
check their values through these functions, so one rule holds everywhere:
an integer argument (`size`, a radius) takes a Python or NumPy integer; a
real argument (`alpha`, `beta`, `bias`, `window_scale`) takes a Python or
NumPy integer or float. Booleans (`True`, `np.True_`) are neither, and a
float is never an integer, not even `5.0` or `np.float32(5.0)`.
"""

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
    learnable=False, window="box", window_scale=None,
):
    """Checks every argument of LRN; returns them as plain Python values.

    Returns:
        A dict of the arguments, named as here, plus `learned` (the names
        of the learned parameters, see `learned_parameters`): `size` an
        `int`, `alpha`, `beta`, `bias` and `window_scale` floats (or
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
    arguments["learned"] = learned
    return arguments


def compute_dtype_of(dtype):
    """The dtype LRN computes in for inputs of `dtype`: float32 for half
    precision, the dtype itself otherwise."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in HALF_PRECISION_DTYPES else dtype


def smallest_window_scale(dtype):
    """The smallest `window_scale` allowed in the compute dtype of `dtype`.

    Below it the weight of a neighbouring channel, `exp(-1 / window_scale)`,
    is no longer a normal number (it reaches denormals, then 0): the window
    would no longer be a decaying window, and its derivative
    `exp(-d / s) * d / s**2` would be computed from underflowed factors. At
    the bound `1 / window_scale = -log(smallest normal)`: about 0.01145 in
    float32, 0.00141 in float64.
    """
    return 1.0 / -math.log(float(np.finfo(compute_dtype_of(dtype)).tiny))


def validate_for_compute_dtype(alpha, beta, bias, dtype, window_scale=None,
                               source=None):
    """Checks that the parameters give finite results in the compute dtype
    of `dtype` (float32 for half precision).

    Every finite input then gives a result that is not NaN: the denominator
    `bias + alpha * sum(x ** 2)` is at least `bias`, a normal number, so
    `t ** -beta` is at most `bias ** -beta`, which must be finite with room
    to spare (at most half the dtype's largest number). Where the squares
    overflow (see `keras_lrn.ops.local_response_normalization`) `t` is
    infinite and the output 0, never NaN. The gradient's factor
    `2 * alpha * beta` must be finite too, and an exponential window's
    `window_scale` at least `smallest_window_scale(dtype)`.

    Args:
        alpha, beta, bias, window_scale: The values in use (Python floats).
        dtype: The layer's or the input's dtype.
        source: Where the values come from, for the message (e.g. "the
            weights loaded from 'model.keras'"); `None` for arguments.

    Raises:
        ValueError: naming `alpha`, `bias`, `beta` or `window_scale`.
    """
    compute_dtype = compute_dtype_of(dtype)
    info = np.finfo(compute_dtype)
    tiny, largest = float(info.tiny), float(info.max)
    where = f" ({source})" if source else ""
    for name, value in (("alpha", alpha), ("beta", beta), ("bias", bias),
                        ("window_scale", window_scale)):
        if value is not None and not math.isfinite(value):
            raise ValueError(
                f"`{name}`{where} must be a finite number. "
                f"Received: {name}={value!r}"
            )
    if alpha != 0 and not tiny <= alpha <= largest:
        raise ValueError(
            f"`alpha`{where} must be 0 or a normal {compute_dtype} number "
            f"(between {tiny:.7g} and {largest:.7g}): the layer computes in "
            f"{compute_dtype}. Received: alpha={alpha!r}"
        )
    if not tiny <= bias <= largest:
        raise ValueError(
            f"`bias`{where} must be a normal {compute_dtype} number "
            f"(between {tiny:.7g} and {largest:.7g}): the layer computes in "
            f"{compute_dtype}. Received: bias={bias!r}"
        )
    if 2 * alpha * beta > largest:
        raise ValueError(
            f"`alpha` and `beta`{where} must keep 2 * alpha * beta (the "
            f"gradient's factor) within {compute_dtype}: at most "
            f"{largest:.7g}. Received: alpha={alpha!r}, beta={beta!r}"
        )
    if -beta * math.log(bias) > math.log(largest / 2):
        raise ValueError(
            f"`bias` and `beta`{where} must keep bias ** -beta (the "
            f"largest scale LRN applies) within {compute_dtype}: at most "
            f"{largest / 2:.7g}. Received: bias={bias!r}, beta={beta!r}"
        )
    if window_scale is not None:
        smallest = smallest_window_scale(compute_dtype)
        if not smallest <= window_scale <= largest:
            raise ValueError(
                f"`window_scale`{where} must be between {smallest:.7g} and "
                f"{largest:.7g} in {compute_dtype}: below, the weight of a "
                "neighbouring channel, exp(-1 / window_scale), underflows. "
                f"Received: window_scale={window_scale!r}"
            )


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
