"""The argument rules of LRN: each argument is checked here, once.

The layer, the functional op, the converters and the legacy loader all
check their values through these functions, so one rule holds everywhere:
an integer argument (`size`, a radius) takes a Python or NumPy integer; a
real argument (`alpha`, `beta`, `bias`, `window_scale`) takes a Python or
NumPy integer or float. Booleans (`True`, `np.True_`) are neither, and a
float is never an integer, not even `5.0` or `np.float32(5.0)`.

Whether a value fits the dtype it runs in (the bounds of `alpha`, `beta`,
`bias` and `window_scale` in float16 to float64) is the one value gate,
`keras_lrn._value_gate`, which builds on these rules.
"""

import math
import numbers

import keras
import numpy as np

__all__ = ["FLOAT_DTYPES", "HALF_PRECISION_DTYPES", "PARAMETERS",
           "compute_dtype_of", "integer_argument",
           "raise_for_convention_keywords", "real_argument", "static_shape",
           "validate_arguments", "validate_dtype_policy",
           "validate_groups_divide_channels", "validate_input"]

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


# Keywords of other frameworks' LRN that users pass to the layer by habit,
# and the converter that takes them.
_CONVENTION_KEYWORDS = {
    "depth_radius": "LocalResponseNormalization.from_tensorflow(depth_radius"
                    "=..., bias=..., alpha=..., beta=...)",
    "k": "LocalResponseNormalization.from_caffe(local_size=..., alpha=..., "
         "beta=..., k=...) or .from_torch(size=..., alpha=..., beta=..., "
         "k=...)",
    "local_size": "LocalResponseNormalization.from_caffe(local_size=..., "
                  "alpha=..., beta=..., k=...)",
    "norm_region": "LocalResponseNormalization.from_caffe(..., "
                   "norm_region=...)",
    "n": "LocalResponseNormalization(size=n, ...) (old Keras's LRN2D: alpha "
         "per term, bias=k; keras_lrn.legacy_objects() loads its files)",
    "radius": "LocalResponseNormalization.from_tensorflow(depth_radius=...)",
}


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


def validate_dtype_policy(policy, dtype):
    """A `ValueError` naming the `dtype` argument where the layer's dtype
    policy computes or stores in something other than a float."""
    for kind in (policy.compute_dtype, policy.variable_dtype):
        if keras.backend.standardize_dtype(kind) not in (
                FLOAT_DTYPES):
            raise ValueError(
                "Argument `dtype` must be a float dtype (or a dtype policy "
                f"of one): one of {FLOAT_DTYPES}, or a mixed "
                "policy such as 'mixed_float16'. LocalResponseNormalization "
                "computes and stores its parameters in it. "
                f"Received: dtype={dtype!r}"
            )


def raise_for_convention_keywords(kwargs):
    """A `ValueError` pointing to the converter for another framework's
    keyword (Keras's own message says only "Unrecognized keyword
    arguments")."""
    for name, converter in _CONVENTION_KEYWORDS.items():
        if name in kwargs:
            raise ValueError(
                f"LocalResponseNormalization has no argument `{name}`: it is "
                "another framework's spelling, whose window or alpha means "
                f"something else here. Use {converter}, which converts it. "
                f"Received: {name}={kwargs[name]!r}"
            )


def compute_dtype_of(dtype):
    """The dtype LRN computes in for inputs of `dtype`: float32 for half
    precision, the dtype itself otherwise."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in HALF_PRECISION_DTYPES else dtype


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
