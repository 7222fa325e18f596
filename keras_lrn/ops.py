"""Local Response Normalization as a function: the math and its dispatch.

`y = x / (bias + alpha * window_sum(x ** 2)) ** beta`, zero padding outside
the tensor. Everything is computed by `portable_lrn`, written in `keras.ops`
with a hand-written, itself differentiable gradient. `choose_implementation`
is the one place that may route a call to `tf.nn.local_response_normalization`
instead. `normalize` is the one door every caller goes through: the public
`local_response_normalization` validates its arguments and calls it; the
layer validates once, in its constructor, and calls it.

Numbers given as arguments follow one rule, here, in the layer and in every
converter: an integer argument (`size`, a radius) takes a Python or NumPy
integer; a real argument (`alpha`, `beta`, `bias`) takes a Python or NumPy
integer or float. Booleans (`True`, `np.True_`) are neither, and a float is
never an integer, not even `5.0` or `np.float32(5.0)`.
"""

import contextlib
import contextvars
import dataclasses
import functools
import math
import numbers

import keras
import numpy as np
from keras import ops

MODES = ("across_channels", "within_channel")
DATA_FORMATS = ("channels_last", "channels_first")
EVEN_WINDOW_SIDES = ("after", "before")
IMPLEMENTATIONS = ("auto", "native", "portable")
HALF_PRECISION_DTYPES = ("float16", "bfloat16")
FLOAT_DTYPES = HALF_PRECISION_DTYPES + ("float32", "float64")
# Betas with a power path of their own (`_inverse_power`); other betas are a
# runtime value of one general path.
FAST_BETAS = (0.0, 0.5, 0.75, 1.0)
# The widest window that is not clamped to the input when an axis it spans
# has no static length (a traced graph with unknown spatial dimensions).
LARGEST_UNCLAMPED_SIZE = 255


class InputDTypeError(TypeError, ValueError):
    """An input whose dtype LRN cannot normalize (not a float).

    A `TypeError` by nature, and a `ValueError` like Keras's own input checks,
    so that either `except` clause catches it.
    """


# --- arguments ---------------------------------------------------------------

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


def validate_arguments(
    size, alpha, beta, bias, mode, data_format, even_window_side,
    implementation,
):
    """Checks the hyperparameters; returns them as plain Python values.

    Returns:
        A dict of the arguments, named as here: `size` an `int`, `alpha`,
        `beta` and `bias` floats, `data_format` resolved from `None`.

    Raises:
        ValueError: naming the first argument whose value is not allowed.
    """
    arguments = dict(
        size=integer_argument("size", size, 1),
        alpha=real_argument("alpha", alpha, 0.0),
        beta=real_argument("beta", beta, 0.0),
        bias=real_argument("bias", bias, 0.0, minimum_allowed=False),
    )
    for name, value, allowed in (
        ("mode", mode, MODES),
        ("even_window_side", even_window_side, EVEN_WINDOW_SIDES),
        ("implementation", implementation, IMPLEMENTATIONS),
    ):
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(
                f"Argument `{name}` must be one of {allowed}. "
                f"Received: {name}={value!r}"
            )
    if data_format is None:
        data_format = keras.config.image_data_format()
    if not isinstance(data_format, str) or data_format not in DATA_FORMATS:
        raise ValueError(
            f"Argument `data_format` must be one of {DATA_FORMATS} or None. "
            f"Received: data_format={data_format!r}"
        )
    if implementation == "native":
        raise_if_native_unavailable(
            native_unavailable_reason(mode, arguments["size"], data_format))
    return dict(arguments, mode=mode, data_format=data_format,
                even_window_side=even_window_side,
                implementation=implementation)


def validate_for_compute_dtype(alpha, beta, bias, dtype):
    """Checks that `alpha`, `beta` and `bias` give finite results in the
    compute dtype of `dtype` (float32 for half precision).

    Every finite input then gives a result that is not NaN: the denominator
    `bias + alpha * sum(x ** 2)` is at least `bias`, a normal number, so
    `t ** -beta` is at most `bias ** -beta`, which must be finite with room
    to spare (at most half the dtype's largest number). Where the squares
    overflow (see `local_response_normalization`) `t` is infinite and the
    output 0, never NaN.

    The gradient's factor `2 * alpha * beta` must be finite too.

    Raises:
        ValueError: naming `alpha`, `bias` or `beta`.
    """
    compute_dtype = compute_dtype_of(dtype)
    info = np.finfo(compute_dtype)
    tiny, largest = float(info.tiny), float(info.max)
    if alpha != 0 and not tiny <= alpha <= largest:
        raise ValueError(
            f"Argument `alpha` must be 0 or a normal {compute_dtype} number "
            f"(between {tiny:.7g} and {largest:.7g}): the layer computes in "
            f"{compute_dtype}. Received: alpha={alpha!r}"
        )
    if not tiny <= bias <= largest:
        raise ValueError(
            f"Argument `bias` must be a normal {compute_dtype} number "
            f"(between {tiny:.7g} and {largest:.7g}): the layer computes in "
            f"{compute_dtype}. Received: bias={bias!r}"
        )
    if 2 * alpha * beta > largest:
        raise ValueError(
            "Arguments `alpha` and `beta` must keep 2 * alpha * beta (the "
            f"gradient's factor) within {compute_dtype}: at most "
            f"{largest:.7g}. Received: alpha={alpha!r}, beta={beta!r}"
        )
    if -beta * math.log(bias) > math.log(largest / 2):
        raise ValueError(
            f"Arguments `bias` and `beta` must keep bias ** -beta (the "
            f"largest scale LRN applies) within {compute_dtype}: at most "
            f"{largest / 2:.7g}. Received: bias={bias!r}, beta={beta!r}"
        )


def validate_input(shape, dtype, mode, data_format):
    """Checks an input's shape and dtype against the layer's needs.

    Raises:
        ValueError: for a rank below 3, or an unknown channel dimension in
            across-channel mode.
        InputDTypeError: for a dtype that is not a float.
    """
    if len(shape) < 3:
        raise ValueError(
            "LocalResponseNormalization expects inputs of rank >= 3 "
            "(batch, at least one spatial axis, channels). "
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


# --- the dispatch ------------------------------------------------------------

_NATIVE_FOR_EXPORT = contextvars.ContextVar("native_for_export", default=False)


@contextlib.contextmanager
def native_for_export():
    """Within this context, "auto" emits TensorFlow's own LRN op.

    For exporting one `LRN` node: a model traced inside it (by
    `model.export`, `tf.lite.TFLiteConverter`, tf2onnx) holds one
    `tf.nn.local_response_normalization` op for each layer and op call with
    `implementation="auto"` that the op can compute (TensorFlow backend,
    across channels, 4-D channels_last input, odd size, not float64).
    tf2onnx turns it into ONNX's `LRN` node and the TFLite converter into
    its builtin `LOCAL_RESPONSE_NORMALIZATION`. Other calls keep the
    portable path. `implementation="native"` does the same for one layer.

    Outside exports, "auto" stays on the portable path: TensorFlow's CPU
    kernel spreads a NaN or Inf over every channel of its pixel (see
    `choose_implementation`), and it is slower.

    Example:

    >>> with keras_lrn.native_for_export():
    ...     model.export("model.onnx", format="onnx")
    """
    token = _NATIVE_FOR_EXPORT.set(True)
    try:
        yield
    finally:
        _NATIVE_FOR_EXPORT.reset(token)


def native_unavailable_reason(mode, size, data_format, shape=None,
                              dtype=None):
    """Why `tf.nn.local_response_normalization` cannot compute this call.

    Returns `None` where it can. The op exists only on the TensorFlow
    backend, normalizes across channels, takes 4-D channels_last input and an
    odd window (`depth_radius`), and has no float64 kernel (its half
    precision kernels are inexact, so half inputs are computed in float32).
    `shape` and `dtype` are checked where given.
    """
    conditions = [
        (keras.backend.backend() == "tensorflow",
         f"it needs the TensorFlow backend, not '{keras.backend.backend()}'"),
        (mode == "across_channels", f"it has no mode '{mode}'"),
        (size % 2 == 1, f"it takes only odd sizes, not size={size}"),
        (data_format == "channels_last",
         f"it takes only channels_last input, not '{data_format}'"),
    ]
    if shape is not None:
        conditions.append((len(shape) == 4,
                           f"it takes only 4-D input, not shape {shape}"))
    if dtype is not None:
        conditions.append((keras.backend.standardize_dtype(dtype) != "float64",
                           "it has no float64 kernel"))
    for holds, reason in conditions:
        if not holds:
            return reason
    return None


def raise_if_native_unavailable(reason):
    """Raises the error for implementation='native' where `reason` says why
    the native op cannot serve (`None`: it can)."""
    if reason is not None:
        raise ValueError(
            "implementation='native' calls tf.nn.local_response_normalization,"
            f" which cannot compute this layer: {reason}. Use "
            "implementation='auto' or 'portable'. "
            "Received: implementation='native'"
        )


def choose_implementation(implementation, shape, dtype, mode, size, bias,
                          beta, data_format):
    """Returns "native" or "portable": the path that computes one call.

    "portable" (`portable_lrn`) is the default everywhere, because it is
    exact and the fastest on CPU in every TensorFlow context (eager, plain
    `tf.function`, XLA, SavedModel serving): XLA compiles it into one fused
    pass over memory, where `tf.nn.local_response_normalization`'s CPU
    kernel is several times slower and, outside XLA, spreads a NaN or Inf
    over every channel of its pixel (tensorflow/tensorflow#57746), also when
    TensorFlow's graph optimizer constant-folds it. benchmarks/RESULTS.md
    holds the measurements.

    "auto" picks "native" only
    - inside `native_for_export()`, where the op can compute the call, so
      that an exported graph holds one `LRN` op;
    - on a TensorFlow GPU in float32 within cuDNN's limits (depth_radius
      1..7, beta >= 0.01, bias >= 1e-5): cuDNN's LRN kernel.
    "native" raises a `ValueError` where the op cannot compute the call.
    """
    reason = native_unavailable_reason(mode, size, data_format, shape, dtype)
    if implementation == "native":
        raise_if_native_unavailable(reason)
        return "native"
    if implementation == "portable" or reason is not None:
        return "portable"
    if _NATIVE_FOR_EXPORT.get():
        return "native"
    if (
        keras.backend.standardize_dtype(dtype) == "float32"
        and 3 <= size <= 15
        and beta >= 0.01
        and bias >= 1e-5
        and _tensorflow_gpu_available()
    ):
        return "native"
    return "portable"


# --- the function and its operation ------------------------------------------

def local_response_normalization(
    x, size=5, alpha=1e-4, beta=0.75, bias=2.0, mode="across_channels",
    data_format=None, even_window_side="after", implementation="auto",
):
    """Local Response Normalization (Krizhevsky et al., 2012).

    Computes

    ```
    y = x / (bias + alpha * sum(x[c'] ** 2 for c' in window(c))) ** beta
    ```

    with zero padding outside the tensor. In mode "across_channels" the
    window spans `size` neighbouring channels at one position (AlexNet's
    LRN); in mode "within_channel" it spans `size` positions along every
    spatial axis of one channel (a `size x size` box on images, Caffe's
    WITHIN_CHANNEL). `alpha` multiplies each term, as in the AlexNet paper
    and `tf.nn.local_response_normalization`; Caffe, PyTorch and ONNX divide
    their alpha by the window: see `LocalResponseNormalization.from_caffe`
    and its siblings.

    Cost is bounded by the input, whatever `size`: a window longer than an
    axis of length `n` needs hold no more than `n - 1` elements on either
    side of its centre, so wider windows are clamped to that, which changes
    no result. (Where a traced graph leaves a spatial length unknown, mode
    "within_channel" cannot clamp and raises a `ValueError` naming `size`
    for sizes above `LARGEST_UNCLAMPED_SIZE`.) An empty input returns
    itself.

    Overflow: the result is exact while every square, and the window's sum
    times `alpha`, is finite in the compute dtype: `|x|` below 1.8e19
    (`sqrt` of the largest float32) for float32 and bfloat16, 1.3e154 for
    float64; float16 inputs (at most 65504) never overflow. Beyond that the
    denominator is infinite and the output 0 (so is
    `tf.nn.local_response_normalization`'s), never NaN.

    Args:
        x: A float tensor of rank >= 3: batch, spatial axes, channels (in
            the order `data_format` says).
        size: The window length, a positive integer: channels in mode
            "across_channels", positions per spatial axis in mode
            "within_channel". Defaults to AlexNet's 5.
        alpha: The coefficient of each squared term, >= 0.
        beta: The exponent, >= 0.
        bias: The additive constant k, > 0.
        mode: "across_channels" or "within_channel".
        data_format: "channels_last" or "channels_first"; `None` means
            `keras.config.image_data_format()`.
        even_window_side: For an even `size`, the side of the centre that
            holds the extra element: "after" (TensorFlow's SAME padding,
            ONNX) or "before" (PyTorch).
        implementation: "auto", "native" (`tf.nn.local_response_normalization`,
            where it can compute the call) or "portable" (`keras.ops`); see
            `choose_implementation`.

    Returns:
        A tensor of the shape and dtype of `x`. Half-precision inputs are
        computed in float32 and rounded once.

    Raises:
        ValueError: naming the argument whose value is not allowed, also
            where `alpha`, `beta` or `bias` give no finite result in the
            compute dtype (`validate_for_compute_dtype`).

    Example:

    >>> x = keras.random.uniform((2, 8, 8, 16))
    >>> y = keras_lrn.ops.local_response_normalization(x, size=5)
    >>> y.shape
    (2, 8, 8, 16)
    """
    arguments = validate_arguments(
        size, alpha, beta, bias, mode, data_format, even_window_side,
        implementation,
    )
    if not keras.utils.is_keras_tensor(x):
        x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in FLOAT_DTYPES:
        validate_for_compute_dtype(arguments["alpha"], arguments["beta"],
                                   arguments["bias"], x.dtype)
    return normalize(x, **arguments)


def normalize(x, size, alpha, beta, bias, mode, data_format,
              even_window_side, implementation):
    """`local_response_normalization` for validated arguments.

    The one door to the computation: the layer validates its arguments once,
    in its constructor, and calls this on every call. Symbolic inputs (the
    functional API) get an `LRNOperation`'s symbolic call; tensors are
    checked (`validate_input`) and computed by the path
    `choose_implementation` picks.
    """
    if keras.utils.is_keras_tensor(x):
        return LRNOperation(
            size=size, alpha=alpha, beta=beta, bias=bias, mode=mode,
            data_format=data_format, even_window_side=even_window_side,
            implementation=implementation,
        ).symbolic_call(x)
    x = ops.convert_to_tensor(x)
    shape = static_shape(x)
    validate_input(shape, x.dtype, mode, data_format)
    if 0 in shape:
        return x
    window = Window.of(shape, size, mode, data_format, even_window_side)
    chosen = choose_implementation(implementation, shape, x.dtype, mode, size,
                                   bias, beta, data_format)
    if chosen == "native":
        return native_lrn(x, window, alpha, beta, bias)
    return portable_lrn(x, window, alpha, beta, bias)


class LRNOperation(keras.Operation):
    """The `keras.Operation` of `normalize`, for symbolic inputs of the
    functional API. Arguments are already validated."""

    def __init__(self, size, alpha, beta, bias, mode, data_format,
                 even_window_side, implementation):
        super().__init__()
        self.arguments = dict(
            size=size, alpha=alpha, beta=beta, bias=bias, mode=mode,
            data_format=data_format, even_window_side=even_window_side,
            implementation=implementation,
        )

    def compute_output_spec(self, x):
        validate_input(static_shape(x), x.dtype, self.arguments["mode"],
                       self.arguments["data_format"])
        return keras.KerasTensor(x.shape, dtype=x.dtype)

    def call(self, x):
        return normalize(x, **self.arguments)


# --- the window --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Window:
    """Where the window of each output element lies.

    Attributes:
        axes: The axes the window spans (the channel axis, or every spatial
            axis), counted from 0.
        before: How many elements before the centre it holds, per axis.
        after: How many after.
    """

    axes: tuple
    before: int
    after: int

    @classmethod
    def of(cls, shape, size, mode, data_format, even_window_side):
        """The window of `size` for an input of `shape`, clamped to it.

        On an axis of length `n` no window reaches more than `n - 1`
        elements from its centre, so `before` and `after` are clamped to
        the longest spanned axis less one: the sums are the same, and the
        cost is bounded by the input, not by `size`.

        Raises:
            ValueError: for `size > LARGEST_UNCLAMPED_SIZE` where an axis the
                window spans has no static length.
        """
        rank = len(shape)
        if data_format == "channels_last":
            channel_axis, spatial_axes = rank - 1, range(1, rank - 1)
        else:
            channel_axis, spatial_axes = 1, range(2, rank)
        axes = ((channel_axis,) if mode == "across_channels"
                else tuple(spatial_axes))
        before = size // 2 if even_window_side == "before" else (size - 1) // 2
        after = size - 1 - before
        lengths = [shape[axis] for axis in axes]
        if None not in lengths:
            reach = max(lengths) - 1
            before, after = min(before, reach), min(after, reach)
        elif size > LARGEST_UNCLAMPED_SIZE:
            raise ValueError(
                f"A window of size {size} cannot be clamped to an input whose "
                "spatial length is unknown when traced, and at most "
                f"{LARGEST_UNCLAMPED_SIZE} is computed unclamped. Give the "
                "input static spatial dimensions or a smaller size. "
                f"Received: size={size}, input shape={tuple(shape)}"
            )
        return cls(axes, before, after)

    def transposed(self):
        """The window of the adjoint sum: output i receives from the
        elements whose window holds i."""
        return Window(self.axes, self.after, self.before)

    def sum(self, values):
        """Sums `values` over the window of each element, zeros outside."""
        for axis in self.axes:
            values = _sum_along_axis(values, axis, self.before, self.after)
        return values


def _sum_along_axis(values, axis, before, after):
    """`out[i] = sum(values[i - before : i + after + 1])` along `axis`.

    This is a depthwise convolution with a ones kernel along one axis (the
    within-channel box is one such pass per spatial axis). It sums doubling
    windows (1, 2, 4, ...) of the zero-padded input and adds
    the ones that make up `size` from its binary digits: log2(size) + popcount
    additions instead of size - 1, each exact in floating point (a running
    cumsum difference would lose float32 precision). Slices are written
    relative to both ends, so spatial lengths need not be known. Chosen over
    shifted single-element sums, a depthwise convolution of ones and
    `reduce_window`, which were slower on every backend measured
    (benchmarks/RESULTS.md, benchmarks/backends_results.txt).
    """
    size = before + after + 1
    if size == 1:
        return values
    rank = len(values.shape)
    pad_width = [(0, 0)] * rank
    pad_width[axis] = (before, after)
    padded = ops.pad(values, pad_width)

    def shifted(tensor, start, stop_from_end):
        index = [slice(None)] * rank
        index[axis] = slice(start, -stop_from_end if stop_from_end else None)
        return tensor[tuple(index)]

    # widths[w] holds the sums of w consecutive padded elements; its length
    # is length + size - w.
    widths = {1: padded}
    width = 1
    while 2 * width <= size:
        previous = widths[width]
        widths[2 * width] = ops.add(
            shifted(previous, 0, width), shifted(previous, width, 0)
        )
        width *= 2
    total = None
    offset = 0
    for width in sorted(widths, reverse=True):
        if size - offset >= width and (size - offset) & width:
            term = shifted(widths[width], offset, size - offset - width)
            total = term if total is None else ops.add(total, term)
            offset += width
    return total


def _inverse_power(t, beta_path, beta):
    """`t ** -beta` for t > 0, with square roots for the common betas.

    `beta_path` is beta itself where it is one of `FAST_BETAS`, known when
    the function is traced, or `None` for the general path, which raises
    `t` to the runtime value `beta` (a scalar tensor in t's dtype).
    `rsqrt` and `sqrt` are correctly rounded or nearly so on every backend,
    cheaper than `pow`, and fuse under XLA, where `pow` and `exp(-beta *
    log(t))` are several times slower (benchmarks/RESULTS.md).
    """
    if beta_path == 0:
        return ops.ones_like(t)
    if beta_path == 0.5:
        return ops.rsqrt(t)
    if beta_path == 0.75:
        root = ops.rsqrt(t)
        return root * ops.sqrt(root)
    if beta_path == 1:
        # a true division: TensorFlow's CPU `reciprocal` is off by an ulp
        return ops.divide(1.0, t)
    return ops.power(t, -beta)


def compute_dtype_of(dtype):
    """The dtype LRN computes in for inputs of `dtype`: float32 for half
    precision, the dtype itself otherwise."""
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in HALF_PRECISION_DTYPES else dtype


@dataclasses.dataclass(frozen=True)
class Structure:
    """What a compiled pass depends on, beside the input's shape.

    Everything else (alpha, bias, a general beta) reaches the compiled
    functions as runtime values (`Coefficients`), so the number of compiled
    programs grows with the structures in use, not with the hyperparameter
    values (one per distinct layer otherwise).

    Attributes:
        window: The `Window`.
        input_dtype: The input's dtype (standardized).
        rank: The input's rank.
        beta_path: beta where it is one of `FAST_BETAS`, else `None`.
        alpha_is_zero: Whether alpha is 0: the window sum is then skipped,
            so that squares that overflow cannot give `0 * inf`.
    """

    window: Window
    input_dtype: str
    rank: int
    beta_path: float | None
    alpha_is_zero: bool

    @classmethod
    def of(cls, x, window, alpha, beta):
        return cls(
            window=window,
            input_dtype=keras.backend.standardize_dtype(x.dtype),
            rank=len(x.shape),
            beta_path=beta if beta in FAST_BETAS else None,
            alpha_is_zero=alpha == 0,
        )


def _coefficients(structure, alpha, beta, bias):
    """alpha, bias, beta and the backward's `2 * alpha * beta`, as one
    runtime tensor in the compute dtype (each rounded once from Python's
    float64)."""
    return ops.convert_to_tensor(
        [alpha, bias, beta, 2.0 * alpha * beta],
        dtype=compute_dtype_of(structure.input_dtype),
    )


def _forward(x, coefficients, structure):
    """Returns (y, t) in the compute dtype: t = bias + alpha * sum(x^2),
    y = x * t ** -beta."""
    alpha, bias, beta = coefficients[0], coefficients[1], coefficients[2]
    if structure.alpha_is_zero:
        t = ops.zeros_like(x) + bias
    else:
        t = bias + alpha * structure.window.sum(ops.square(x))
    return x * _inverse_power(t, structure.beta_path, beta), t


def _backward(x, upstream, t, coefficients, structure):
    """The vector-Jacobian product of LRN, from the forward's `t`.

    With `y_i = x_i * s_i` and `s_i = t_i ** -beta`:
    `dx_j = g_j * s_j - 2 * alpha * beta * x_j * sum_{i: j in window(i)}
    g_i * y_i / t_i`. `s` is recomputed from `t` elementwise, which costs
    less than storing it. Built from differentiable ops, so gradients of
    any order follow.
    """
    s = _inverse_power(t, structure.beta_path, coefficients[2])
    if structure.alpha_is_zero:
        return upstream * s
    correction = structure.window.transposed().sum(upstream * x * s / t)
    return upstream * s - coefficients[3] * x * correction


@functools.lru_cache(maxsize=256)
def _compiled_pass(structure):
    """The forward and backward passes for one `Structure`.

    Both take the runtime `coefficients` (`_coefficients`) beside the
    tensors, so a new alpha or bias compiles nothing.

    On TensorFlow each is XLA-compiled (`_xla_compiled_on_tensorflow`)
    also when called from eager mode or a plain `tf.function`: XLA fuses
    the window sum and the power into one pass over memory, where
    TensorFlow's graph executor runs (and stores) every op separately, and
    is then faster than `tf.nn.local_response_normalization`
    (benchmarks/RESULTS.md). Inside an outer XLA function they are inlined.
    Each function is traced once per structure: `reduce_retracing` relaxes
    the dimensions, so new batch or image sizes only recompile.

    On JAX each is `jax.jit`-compiled for the same reason (inlined in the
    caller's `jit`): eager calls op by op were several times slower, and a
    window sum through `jax.lax.reduce_window` slower too
    (benchmarks/backends_results.txt). On PyTorch the functions run eagerly:
    `torch.nn.functional.local_response_norm` was no faster forward and
    slower backward there.
    """
    input_dtype = structure.input_dtype
    compute_dtype = compute_dtype_of(input_dtype)

    def forward(x, coefficients):
        y, t = _forward(ops.cast(x, compute_dtype), coefficients, structure)
        return ops.cast(y, input_dtype), t

    def backward(x, upstream, t, coefficients):
        dx = _backward(ops.cast(x, compute_dtype),
                       ops.cast(upstream, compute_dtype), t, coefficients,
                       structure)
        return ops.cast(dx, input_dtype)

    if keras.backend.backend() == "tensorflow":
        forward = _xla_compiled_on_tensorflow(forward)
        backward = _xla_compiled_on_tensorflow(backward)
    elif keras.backend.backend() == "jax":
        import jax

        forward = jax.jit(forward)
        backward = jax.jit(backward)
    elif keras.backend.backend() == "torch":
        backward = _differentiable_on_torch(backward, forward)
    return forward, backward


def _xla_compiled_on_tensorflow(function):
    """`function`, XLA-compiled on TensorFlow whether called eagerly or
    traced into a graph.

    Eager calls go through `tf.function(jit_compile=True)`. Traced into a
    graph, the ops are written inline inside an XLA `jit_scope`: TensorFlow
    compiles them as one cluster when the graph runs (as fast as a nested
    compiled function), and the graph holds plain ops, which exporters
    (tf2onnx, for `model.export(format="onnx")`) convert, where they cannot
    convert a call to a compiled function. Inside an outer XLA function the
    ops are compiled with it. Every op is elementwise, a pad or a slice, so
    a NaN or Inf stays in its window also where TensorFlow runs them without
    XLA or constant-folds them.
    """
    import tensorflow as tf

    compiled = tf.function(function, jit_compile=True, reduce_retracing=True)

    def call(*args):
        if tf.executing_eagerly():
            return compiled(*args)
        with tf.xla.experimental.jit_scope(
                compile_ops=True, separate_compiled_gradients=False):
            return function(*args)

    return call


def _differentiable_on_torch(backward, forward):
    """Makes the backward differentiable on PyTorch, whose `custom_gradient`
    runs the forward without autograd: its `t` carries no graph. Where the
    backward is itself differentiated (`create_graph=True`, grad mode on
    inside the backward), `t` is recomputed from `x` with autograd."""
    import torch

    def differentiable_backward(x, upstream, t, coefficients):
        if torch.is_grad_enabled():
            _, t = forward(x, coefficients)
        return backward(x, upstream, t, coefficients)

    return differentiable_backward


def portable_lrn(x, window, alpha, beta, bias):
    """LRN in `keras.ops`, for any backend, rank, layout, dtype and window.

    Half-precision inputs are computed in float32 and rounded once. The
    gradient is `_backward`, reusing the forward's denominator `t`.
    """
    structure = Structure.of(x, window, alpha, beta)
    forward, backward = _compiled_pass(structure)
    coefficients = _coefficients(structure, alpha, beta, bias)

    @ops.custom_gradient
    def lrn(x):
        y, t = forward(x, coefficients)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return backward(x, upstream, t, coefficients)

        return y, grad

    return lrn(x)


def native_lrn(x, window, alpha, beta, bias):
    """`tf.nn.local_response_normalization`, with a gradient of any order.

    TensorFlow's own gradient, `LRNGrad`, has no gradient itself
    (tensorflow/tensorflow#22825), so the backward pass is the portable one,
    with the denominator recomputed from `x`. Half-precision inputs are
    computed in float32.
    """
    import tensorflow as tf

    input_dtype = keras.backend.standardize_dtype(x.dtype)
    structure = Structure.of(x, window, alpha, beta)
    forward, backward = _compiled_pass(structure)
    coefficients = _coefficients(structure, alpha, beta, bias)

    @tf.custom_gradient
    def lrn(x):
        y = tf.nn.local_response_normalization(
            tf.cast(x, tf.float32), depth_radius=window.before, bias=bias,
            alpha=alpha, beta=beta,
        )

        def grad(upstream):
            _, t = forward(x, coefficients)
            return backward(x, upstream, t, coefficients)

        return tf.cast(y, input_dtype), grad

    return lrn(x)


@functools.cache
def _tensorflow_gpu_available():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))
