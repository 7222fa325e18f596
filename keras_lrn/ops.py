"""Local Response Normalization as a function: the math and its dispatch.

`y = x / (bias + alpha * window_sum(x ** 2)) ** beta`, zero padding outside
the tensor. Everything is computed by `portable_lrn`, written in `keras.ops`
with a hand-written, itself differentiable gradient. `choose_implementation`
is the one place that may route a call to `tf.nn.local_response_normalization`
instead, where that op's preconditions hold.
"""

import dataclasses
import functools
import math

import keras
from keras import ops

MODES = ("across_channels", "within_channel")
DATA_FORMATS = ("channels_last", "channels_first")
EVEN_WINDOW_SIDES = ("after", "before")
IMPLEMENTATIONS = ("auto", "native", "portable")
HALF_PRECISION_DTYPES = ("float16", "bfloat16")
FLOAT_DTYPES = HALF_PRECISION_DTYPES + ("float32", "float64")


class InputDTypeError(TypeError, ValueError):
    """An input whose dtype LRN cannot normalize (not a float).

    A `TypeError` by nature, and a `ValueError` like Keras's own input checks,
    so that either `except` clause catches it.
    """


def validate_arguments(
    size, alpha, beta, bias, mode, data_format, even_window_side,
    implementation,
):
    """Checks the hyperparameters; returns `data_format` resolved.

    Raises:
        ValueError: naming the first argument whose value is not allowed.
    """
    if (
        isinstance(size, bool)
        or not isinstance(size, int) and not _is_integral(size)
        or size < 1
    ):
        raise ValueError(
            "Argument `size` must be a positive integer (the window length). "
            f"Received: size={size!r}"
        )
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not _is_real(value) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"Argument `{name}` must be a finite number >= 0. "
                f"Received: {name}={value!r}"
            )
    if not _is_real(bias) or not math.isfinite(bias) or bias <= 0:
        raise ValueError(
            "Argument `bias` must be a finite number > 0 (it keeps the "
            f"denominator positive). Received: bias={bias!r}"
        )
    for name, value, allowed in (
        ("mode", mode, MODES),
        ("even_window_side", even_window_side, EVEN_WINDOW_SIDES),
        ("implementation", implementation, IMPLEMENTATIONS),
    ):
        if value not in allowed:
            raise ValueError(
                f"Argument `{name}` must be one of {allowed}. "
                f"Received: {name}={value!r}"
            )
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            f"Argument `data_format` must be one of {DATA_FORMATS} or None. "
            f"Received: data_format={data_format!r}"
        )
    return data_format


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
            "implementation='auto' or 'portable'."
        )


def choose_implementation(implementation, shape, dtype, mode, size, bias,
                          beta, data_format):
    """Returns "native", "native_compiled" or "portable" for one call.

    "auto" picks the portable path, except on TensorFlow where the native op
    can compute the call (`native_unavailable_reason`) and either
    - the graph is a plain one, neither eager nor XLA-compiled: the exported
      graph then holds one `LRN` op, which tf2onnx turns into ONNX's `LRN`
      node and the TFLite converter into its builtin, and the op runs inside
      an XLA `jit_scope` ("native_compiled"), which keeps a NaN or Inf inside
      its window (the op's CPU kernel without XLA spreads it over the whole
      pixel, tensorflow/tensorflow#57746);
    - or a GPU is present, in float32, within cuDNN's limits (depth_radius
      1..7, beta >= 0.01, bias >= 1e-5): cuDNN's LRN kernel.
    Eagerly and inside XLA the portable path, compiled by XLA, is 3-5x
    faster than the native op on CPU. Measured on the 2-core CPU for
    AlexNet's conv1 output (32x55x55x96 float32, benchmarks/RESULTS.md):
    forward under XLA 11.3 ms vs. 60.5 ms for the native op, eagerly 15.4
    vs. 45.1 ms; in a plain graph the XLA-compiled native op takes 75 ms
    against 52 ms for its bare CPU kernel, the price of an exportable `LRN`
    op that keeps NaN in its window.
    """
    reason = native_unavailable_reason(mode, size, data_format, shape, dtype)
    if implementation == "native":
        raise_if_native_unavailable(reason)
        return "native"
    if implementation == "portable" or reason is not None:
        return "portable"
    if (
        keras.backend.standardize_dtype(dtype) == "float32"
        and 3 <= size <= 15
        and beta >= 0.01
        and bias >= 1e-5
        and _tensorflow_gpu_available()
    ):
        return "native"
    if _tensorflow_context() == "graph":
        return "native_compiled"
    return "portable"


def _tensorflow_context():
    """"eager", "xla" (tracing inside an XLA-compiled function) or "graph"."""
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    if tf.executing_eagerly():
        return "eager"
    if control_flow_util.GraphOrParentsInXlaContext(
        tf.compat.v1.get_default_graph()
    ):
        return "xla"
    return "graph"


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
            where it can compute the call) or "portable" (`keras.ops`).

    Returns:
        A tensor of the shape and dtype of `x`. Half-precision inputs are
        computed in float32 and rounded once.

    Example:

    >>> x = keras.random.uniform((2, 8, 8, 16))
    >>> y = keras_lrn.ops.local_response_normalization(x, size=5)
    >>> y.shape
    (2, 8, 8, 16)
    """
    data_format = validate_arguments(
        size, alpha, beta, bias, mode, data_format, even_window_side,
        implementation,
    )
    operation = LocalResponseNormalization(
        size=int(size), alpha=float(alpha), beta=float(beta),
        bias=float(bias), mode=mode, data_format=data_format,
        even_window_side=even_window_side, implementation=implementation,
    )
    if keras.utils.is_keras_tensor(x):
        return operation.symbolic_call(x)
    return operation.call(x)


class LocalResponseNormalization(keras.Operation):
    """The operation behind `local_response_normalization`, for symbolic
    inputs of the functional API. Arguments are already validated."""

    def __init__(self, size, alpha, beta, bias, mode, data_format,
                 even_window_side, implementation):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.bias = bias
        self.mode = mode
        self.data_format = data_format
        self.even_window_side = even_window_side
        self.implementation = implementation

    def compute_output_spec(self, x):
        validate_input(x.shape, x.dtype, self.mode, self.data_format)
        return keras.KerasTensor(x.shape, dtype=x.dtype)

    def call(self, x):
        x = ops.convert_to_tensor(x)
        validate_input(tuple(x.shape), x.dtype, self.mode, self.data_format)
        chosen = choose_implementation(
            self.implementation, tuple(x.shape), x.dtype, self.mode,
            self.size, self.bias, self.beta, self.data_format,
        )
        window = Window.of(x.shape, self.size, self.mode, self.data_format,
                           self.even_window_side)
        if chosen != "portable":
            return native_lrn(x, window, self.alpha, self.beta, self.bias,
                              compile_with_xla=chosen == "native_compiled")
        return portable_lrn(x, window, self.alpha, self.beta, self.bias)


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
        rank = len(shape)
        if data_format == "channels_last":
            channel_axis, spatial_axes = rank - 1, range(1, rank - 1)
        else:
            channel_axis, spatial_axes = 1, range(2, rank)
        axes = ((channel_axis,) if mode == "across_channels"
                else tuple(spatial_axes))
        before = size // 2 if even_window_side == "before" else (size - 1) // 2
        return cls(axes, before, size - 1 - before)

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
    relative to both ends, so spatial lengths need not be known. On the
    2-core CPU under XLA (within-channel, conv1 shape) size 15 costs 1.6x
    size 5, where shifted single-element sums cost 1.7-1.8x and a
    depthwise convolution (or `reduce_window`) of ones 70-300x the copy
    floor: XLA's CPU convolutions are slow for this shape.
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


def _inverse_power(t, beta):
    """`t ** -beta` for t > 0, with square roots for the common betas.

    `rsqrt` and `sqrt` are correctly rounded or nearly so on every backend,
    cheaper than `pow`, and fuse under XLA (conv1 forward under XLA on the
    2-core CPU: 8.4 ms with `rsqrt(t) * sqrt(rsqrt(t))`, 15.5 ms with
    `exp(-beta * log(t))`, 31.5 ms with `pow`); other betas use `pow`.
    """
    if beta == 0:
        return ops.ones_like(t)
    if beta == 0.5:
        return ops.rsqrt(t)
    if beta == 0.75:
        root = ops.rsqrt(t)
        return root * ops.sqrt(root)
    if beta == 1:
        # a true division: TensorFlow's CPU `reciprocal` is off by an ulp
        return ops.divide(1.0, t)
    # the exponent in t's dtype: a Python float becomes a float32 tensor on
    # PyTorch, which would round -beta and so float64 results
    return ops.power(t, ops.convert_to_tensor(-beta, dtype=t.dtype))


def _compute_dtype(dtype):
    dtype = keras.backend.standardize_dtype(dtype)
    return "float32" if dtype in HALF_PRECISION_DTYPES else dtype


def _forward(x, window, alpha, beta, bias):
    """Returns (y, t) in the compute dtype: t = bias + alpha * sum(x^2),
    y = x * t ** -beta."""
    t = bias + alpha * window.sum(ops.square(x))
    return x * _inverse_power(t, beta), t


def _backward(x, upstream, t, window, alpha, beta):
    """The vector-Jacobian product of LRN, from the forward's `t`.

    With `y_i = x_i * s_i` and `s_i = t_i ** -beta`:
    `dx_j = g_j * s_j - 2 * alpha * beta * x_j * sum_{i: j in window(i)}
    g_i * y_i / t_i`. `s` is recomputed from `t` elementwise, which costs
    less than storing it. Built from differentiable ops, so gradients of
    any order follow.
    """
    s = _inverse_power(t, beta)
    correction = window.transposed().sum(upstream * x * s / t)
    return upstream * s - (2.0 * alpha * beta) * x * correction


@functools.lru_cache(maxsize=256)
def _compiled_pass(window, alpha, beta, bias, input_dtype, rank):
    """The forward and backward passes for one configuration and rank.

    On TensorFlow each is XLA-compiled (`_xla_compiled_on_tensorflow`)
    also when called from eager mode or a plain `tf.function`: XLA fuses
    the window sum and the power into one pass over memory, where
    TensorFlow's graph executor runs (and stores) every op separately.
    Measured on the 2-core CPU for AlexNet's conv1 output (32x55x55x96,
    float32, size 5): forward 6 ms compiled vs. ~40 ms op by op and ~35 ms
    for `tf.nn.local_response_normalization` (benchmarks/RESULTS.md). Inside
    an outer XLA function they are inlined. Each function is traced once
    per rank: `reduce_retracing` relaxes the dimensions, so new batch or
    image sizes only recompile.

    On JAX each is `jax.jit`-compiled for the same reason (inlined in the
    caller's `jit`): eager calls took 427 ms forward and 959 ms forward and
    backward on the shape above, jitted 54 and 100 ms; a window sum through
    `jax.lax.reduce_window` took 96 and 126 ms
    (benchmarks/backends_results.txt). On PyTorch the functions run eagerly:
    `torch.nn.functional.local_response_norm` was no faster forward and
    slower backward there.
    """
    compute_dtype = _compute_dtype(input_dtype)

    def forward(x):
        y, t = _forward(ops.cast(x, compute_dtype), window, alpha, beta, bias)
        return ops.cast(y, input_dtype), t

    def backward(x, upstream, t):
        dx = _backward(ops.cast(x, compute_dtype),
                       ops.cast(upstream, compute_dtype), t, window, alpha,
                       beta)
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
    ops are compiled with it.
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

    def differentiable_backward(x, upstream, t):
        if torch.is_grad_enabled():
            _, t = forward(x)
        return backward(x, upstream, t)

    return differentiable_backward


def portable_lrn(x, window, alpha, beta, bias):
    """LRN in `keras.ops`, for any backend, rank, layout, dtype and window.

    Half-precision inputs are computed in float32 and rounded once. The
    gradient is `_backward`, reusing the forward's denominator `t`.
    """
    forward, backward = _compiled_pass(
        window, alpha, beta, bias, keras.backend.standardize_dtype(x.dtype),
        len(x.shape))

    @ops.custom_gradient
    def lrn(x):
        y, t = forward(x)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return backward(x, upstream, t)

        return y, grad

    return lrn(x)


def native_lrn(x, window, alpha, beta, bias, compile_with_xla=False):
    """`tf.nn.local_response_normalization`, with a gradient of any order.

    TensorFlow's own gradient, `LRNGrad`, has no gradient itself
    (tensorflow/tensorflow#22825), so the backward pass is the portable one,
    with the denominator recomputed from `x`. Half-precision inputs are
    computed in float32. With `compile_with_xla` (in a graph) the op runs
    inside an XLA `jit_scope`.
    """
    import tensorflow as tf

    input_dtype = keras.backend.standardize_dtype(x.dtype)
    forward, backward = _compiled_pass(window, alpha, beta, bias, input_dtype,
                                       len(x.shape))

    def native(x):
        y = tf.nn.local_response_normalization(
            tf.cast(x, tf.float32), depth_radius=window.before, bias=bias,
            alpha=alpha, beta=beta,
        )
        return tf.cast(y, input_dtype)

    @tf.custom_gradient
    def lrn(x):
        if compile_with_xla:
            with tf.xla.experimental.jit_scope(
                    compile_ops=True, separate_compiled_gradients=False):
                y = native(x)
        else:
            y = native(x)

        def grad(upstream):
            _, t = forward(x)
            return backward(x, upstream, t)

        return y, grad

    return lrn(x)


@functools.cache
def _tensorflow_gpu_available():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def _is_integral(value):
    try:
        return int(value) == value and not isinstance(value, float)
    except (TypeError, ValueError):
        return False


def _is_real(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, (bool, str))
