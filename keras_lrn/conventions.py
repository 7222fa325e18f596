"""How each framework spells LRN's hyperparameters, as data.

keras-lrn's canonical form is
`y = x / (bias + alpha * window_sum(x ** 2)) ** beta`, where `size` is the
window length and `alpha` multiplies each term (the AlexNet paper's and
TensorFlow's convention). Other frameworks name the window by its radius,
divide `alpha` by the number of terms in the window, fix `bias`, or put the
extra element of an even window on the other side of the centre. Each row of
`CONVENTIONS` records those differences, and the two functions below convert
through a row, so every converter follows the same code.
"""

import dataclasses
import math
import warnings

from keras_lrn import _arguments


@dataclasses.dataclass(frozen=True)
class Convention:
    """One framework's spelling of LRN.

    Attributes:
        name: The framework (and region), as named in error messages.
        size_arg: The argument that holds the window.
        size_is_radius: Whether `size_arg` is a radius `r` (window `2r + 1`).
        alpha_divisor_exponent: The framework divides `alpha` by
            `size ** alpha_divisor_exponent` (0: per term, 1: by the window
            length, 2: by the area of a `size x size` box).
        bias_arg: The argument that holds `bias` (k).
        fixed_bias: The value `bias` always has, or `None` when it is free.
        mode: The keras-lrn `mode` the framework's region corresponds to.
        even_window_side: Where the framework puts the extra element of an
            even window (`"after"` or `"before"` the centre), or `None`
            where it only allows odd windows.
        extra: Constant arguments of the framework's own (e.g. Caffe's
            `norm_region`), returned by the `to_*` converters.
    """

    name: str
    size_arg: str
    size_is_radius: bool
    alpha_divisor_exponent: int
    bias_arg: str
    fixed_bias: float | None
    mode: str
    even_window_side: str | None
    extra: tuple = ()


CONVENTIONS = {
    "tensorflow": Convention(
        name="tf.nn.local_response_normalization",
        size_arg="depth_radius",
        size_is_radius=True,
        alpha_divisor_exponent=0,
        bias_arg="bias",
        fixed_bias=None,
        mode="across_channels",
        even_window_side=None,
    ),
    "caffe_across_channels": Convention(
        name="Caffe LRN (ACROSS_CHANNELS)",
        size_arg="local_size",
        size_is_radius=False,
        alpha_divisor_exponent=1,
        bias_arg="k",
        fixed_bias=None,
        mode="across_channels",
        even_window_side=None,
        extra=(("norm_region", "ACROSS_CHANNELS"),),
    ),
    "caffe_within_channel": Convention(
        name="Caffe LRN (WITHIN_CHANNEL)",
        size_arg="local_size",
        size_is_radius=False,
        alpha_divisor_exponent=2,
        bias_arg="k",
        fixed_bias=1.0,
        mode="within_channel",
        even_window_side=None,
        extra=(("norm_region", "WITHIN_CHANNEL"),),
    ),
    "torch": Convention(
        name="torch.nn.LocalResponseNorm",
        size_arg="size",
        size_is_radius=False,
        alpha_divisor_exponent=1,
        bias_arg="k",
        fixed_bias=None,
        mode="across_channels",
        even_window_side="before",
    ),
    "onnx": Convention(
        name="ONNX LRN",
        size_arg="size",
        size_is_radius=False,
        alpha_divisor_exponent=1,
        bias_arg="bias",
        fixed_bias=None,
        mode="across_channels",
        even_window_side="after",
    ),
}

CAFFE_NORM_REGIONS = {
    "ACROSS_CHANNELS": "caffe_across_channels",
    "WITHIN_CHANNEL": "caffe_within_channel",
}


def to_canonical(convention, window, alpha, beta, bias, warning_stacklevel=2):
    """Layer arguments for hyperparameters given in `convention`.

    Args:
        convention: A `Convention` (a value of `CONVENTIONS`).
        window: The value of the framework's `size_arg`.
        alpha, beta, bias: The framework's own values.
        warning_stacklevel: The `stacklevel` of the warning for a fixed
            bias given another value: 2 names the caller's line; a function
            of keras-lrn that calls this one passes its callers' depth, so
            the warning names the user's line.

    Returns:
        A dict of `LocalResponseNormalization` arguments.

    Raises:
        ValueError: naming the framework's argument whose value is not
            allowed (numbers follow the rule in `keras_lrn.ops`: Python or
            NumPy integers for the window, Python or NumPy reals for the
            rest, no bools), or an even window where the framework allows
            only odd ones.
    """
    prefix = f"{convention.name}: "
    window = _arguments.integer_argument(
        convention.size_arg, window, 0 if convention.size_is_radius else 1,
        prefix=prefix,
    )
    alpha = _arguments.real_argument("alpha", alpha, 0.0, prefix=prefix)
    beta = _arguments.real_argument("beta", beta, 0.0, prefix=prefix)
    bias = _arguments.real_argument(convention.bias_arg, bias, 0.0,
                                 minimum_allowed=False, prefix=prefix)
    size = 2 * window + 1 if convention.size_is_radius else window
    if size % 2 == 0 and convention.even_window_side is None:
        raise ValueError(
            f"{convention.name} requires an odd `{convention.size_arg}`. "
            f"Received: {convention.size_arg}={window!r}"
        )
    if convention.fixed_bias is not None and bias != convention.fixed_bias:
        warnings.warn(
            f"{convention.name} fixes {convention.bias_arg}="
            f"{convention.fixed_bias} and ignores the value passed; "
            f"using {convention.bias_arg}={convention.fixed_bias}. "
            f"Received: {convention.bias_arg}={bias!r}",
            stacklevel=warning_stacklevel,
        )
        bias = convention.fixed_bias
    arguments = {
        "size": size,
        "alpha": alpha / size**convention.alpha_divisor_exponent,
        "beta": beta,
        "bias": bias,
        "mode": convention.mode,
    }
    if size % 2 == 0:
        arguments["even_window_side"] = convention.even_window_side
    return arguments


def from_canonical(convention, size, alpha, beta, bias, mode, even_window_side):
    """The hyperparameters `convention` needs to compute what a layer does.

    Args:
        convention: A `Convention` (a value of `CONVENTIONS`).
        size, alpha, beta, bias, mode, even_window_side: The layer's
            arguments.

    Returns:
        A dict keyed by the framework's own argument names.

    Raises:
        ValueError: where the framework cannot express the layer.
    """
    cannot = f"{convention.name} cannot express this layer"
    if mode != convention.mode:
        raise ValueError(
            f"{cannot}: it normalizes in mode '{convention.mode}'. "
            f"Received: mode={mode!r}"
        )
    if size % 2 == 0 and even_window_side != convention.even_window_side:
        allowed = (
            "only odd sizes"
            if convention.even_window_side is None
            else f"even sizes with even_window_side="
            f"'{convention.even_window_side}'"
        )
        raise ValueError(
            f"{cannot}: it allows {allowed}. Received: size={size}, "
            f"even_window_side={even_window_side!r}"
        )
    if convention.fixed_bias is not None and not math.isclose(
        bias, convention.fixed_bias
    ):
        raise ValueError(
            f"{cannot}: its {convention.bias_arg} is fixed at "
            f"{convention.fixed_bias}. Received: bias={bias!r}"
        )
    window = (size - 1) // 2 if convention.size_is_radius else size
    return {
        convention.size_arg: window,
        "alpha": alpha * size**convention.alpha_divisor_exponent,
        "beta": beta,
        convention.bias_arg: bias,
        **dict(convention.extra),
    }


def caffe_convention(norm_region):
    """The key of `CONVENTIONS` for Caffe's `norm_region`.

    Raises:
        ValueError: for a region Caffe does not have.
    """
    if not isinstance(norm_region, str) or norm_region not in CAFFE_NORM_REGIONS:
        raise ValueError(
            "Argument `norm_region` must be one of "
            f"{tuple(CAFFE_NORM_REGIONS)}. Received: norm_region={norm_region!r}"
        )
    return CAFFE_NORM_REGIONS[norm_region]


def layer_arguments(convention, window, alpha, beta, bias, layer_kwargs):
    """The arguments of the layer a converter (`LRN.from_tensorflow` and
    siblings) builds: `to_canonical`'s for the framework's values, and the
    layer arguments `layer_kwargs` passed beside them.

    Args:
        convention: A key of `CONVENTIONS`.
        window, alpha, beta, bias: The framework's own values.
        layer_kwargs: Further `LocalResponseNormalization` arguments.

    Raises:
        ValueError: as `to_canonical`, or naming an argument of
            `layer_kwargs` that the conversion sets.
    """
    # the user -> a converter of the layer -> here -> to_canonical
    arguments = to_canonical(CONVENTIONS[convention], window, alpha, beta,
                             bias, warning_stacklevel=4)
    overlap = sorted(set(arguments) & set(layer_kwargs))
    if overlap:
        raise ValueError(
            f"Arguments {overlap} are set by the converter from "
            f"{CONVENTIONS[convention].name} and cannot be "
            f"passed as well. Received: {layer_kwargs}"
        )
    return {**arguments, **layer_kwargs}


def framework_arguments(convention, layer):
    """The hyperparameters `convention` needs to compute what `layer` (a
    `LocalResponseNormalization`) does, for the `to_*` converters: those of
    `from_canonical`, for a layer with fixed hyperparameters, a box window
    and no channel groups.

    Args:
        convention: A key of `CONVENTIONS`.
        layer: The layer; its public attributes are read.

    Raises:
        ValueError: for a learned, exponential-window or grouped layer (no
            framework's LRN computes one), or as `from_canonical`.
    """
    name = CONVENTIONS[convention].name
    if layer.learned_parameters or layer.window != "box":
        raise ValueError(
            f"{name}'s LRN has fixed hyperparameters and a box window: it "
            "cannot express this layer. Received: layer with "
            f"learnable={layer.learnable!r}, window={layer.window!r}"
        )
    if layer.groups != 1:
        raise ValueError(
            f"{name}'s LRN has no channel groups (its window spans every "
            "channel): it cannot express this layer. Use one ungrouped LRN "
            "per group of channels, as cuda-convnet did. Received: layer "
            f"with groups={layer.groups!r}"
        )
    return from_canonical(
        CONVENTIONS[convention], layer.size, layer.alpha, layer.beta,
        layer.bias, layer.mode, layer.even_window_side,
    )


# The converters' spellings (`LRN.from_<name>`), their arguments in order,
# and their defaults (the framework's own, as `LRN.from_<name>` has them).
_FROM_SIGNATURES = {
    "tensorflow": (("depth_radius", 5), ("bias", 1.0), ("alpha", 1.0), ("beta", 0.5)),
    "caffe": (("local_size", 5), ("alpha", 1.0), ("beta", 0.75), ("k", 1.0),
              ("norm_region", "ACROSS_CHANNELS")),
    "torch": (("size", None), ("alpha", 1e-4), ("beta", 0.75), ("k", 1.0)),
    "onnx": (("size", None), ("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0)),
}


def convention_arguments(convention: str, data_format: str | None = None,
                         **hyperparameters) -> dict:
    """Arguments of `keras_lrn.ops.local_response_normalization` for
    hyperparameters written in another framework's convention.

    The same conversion as the layer's converters (`LRN.from_tensorflow`,
    `LRN.from_caffe`, `LRN.from_torch`, `LRN.from_onnx`), with the same
    spellings and defaults, for the functional op. Like the converters, it
    keeps Keras's default layout: `data_format` is left to the op, which
    uses `keras.config.image_data_format()` (`"channels_last"` unless
    configured). PyTorch, Caffe and ONNX tensors are NCHW: for such a
    tensor pass `data_format="channels_first"`, or the op normalizes along
    the last axis (W) instead of the channels.

    Args:
        convention: `"tensorflow"`, `"caffe"`, `"torch"` or `"onnx"`.
        data_format: `"channels_last"` or `"channels_first"`; `None` (the
            default) leaves it out, so the op uses Keras's setting.
        **hyperparameters: the framework's own arguments and names
            (`depth_radius`/`bias` for TensorFlow, `local_size`/`k`/
            `norm_region` for Caffe, `size`/`k` for PyTorch, `size`/`bias`
            for ONNX, and `alpha`, `beta`); those not given take the
            framework's default. PyTorch's and ONNX's `size` is required.

    Returns:
        A dict of keyword arguments for
        `keras_lrn.ops.local_response_normalization`.

    Raises:
        ValueError: for an unknown convention or argument, a missing `size`,
            or a value the framework does not allow (as the converters).

    Example:

    >>> kwargs = keras_lrn.ops.convention_arguments("torch", size=5, alpha=5e-4, k=2.0)
    >>> kwargs
    {'size': 5, 'alpha': 0.0001, 'beta': 0.75, 'bias': 2.0, 'mode': 'across_channels'}
    >>> x = np.ones((1, 2, 2, 8), "float32")
    >>> y = keras_lrn.ops.local_response_normalization(x, **kwargs)
    >>> nchw = np.ones((1, 8, 2, 2), "float32")
    >>> y = keras_lrn.ops.local_response_normalization(
    ...     nchw, **keras_lrn.ops.convention_arguments(
    ...         "torch", size=5, data_format="channels_first"))
    """
    if convention not in _FROM_SIGNATURES:
        raise ValueError(
            f"Argument `convention` must be one of {tuple(_FROM_SIGNATURES)}. "
            f"Received: convention={convention!r}"
        )
    names = [name for name, _ in _FROM_SIGNATURES[convention]]
    unknown = sorted(set(hyperparameters) - set(names))
    if unknown:
        raise ValueError(
            f"The {convention} convention's arguments are {names}. "
            f"Received: {', '.join(f'{n}={hyperparameters[n]!r}' for n in unknown)}"
        )
    values = {name: hyperparameters.get(name, default)
              for name, default in _FROM_SIGNATURES[convention]}
    if values[names[0]] is None:
        raise ValueError(
            f"The {convention} convention needs `{names[0]}`. "
            f"Received: {names[0]}=None"
        )
    key = convention
    if convention == "caffe":
        key = caffe_convention(values.pop("norm_region"))
    row = CONVENTIONS[key]
    arguments = to_canonical(row, values[row.size_arg], values["alpha"], values["beta"],
                             values[row.bias_arg], warning_stacklevel=3)
    if data_format is not None:
        arguments["data_format"] = data_format
    return arguments
