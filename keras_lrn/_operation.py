"""The LRN function and its `keras.Operation`: arguments checked, then the
kernel `keras_lrn._dispatch` chooses computes the call."""

import keras
from keras import ops

from keras_lrn import _arguments
from keras_lrn import _dispatch
from keras_lrn import _value_gate

__all__ = ["LRNOperation", "local_response_normalization", "normalize"]


def local_response_normalization(
    x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, bias: float = 2.0,
    mode: str = "across_channels", data_format: str | None = None,
    even_window_side: str = "after", implementation: str = "auto",
    window: str = "box", window_scale: float | None = None, groups: int = 1,
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
    and its siblings. With `window="exponential"` (across channels) every
    channel c' weighs `exp(-|c - c'| / window_scale)` in the sum of channel
    c, and `size` is unused. With `groups`, the channels split into
    `groups` equal contiguous groups and no window crosses a group's edge
    (zero padding at each edge): the normalization of AlexNet's two GPU
    towers. This is the computation of
    `keras_lrn.LocalResponseNormalization`, with fixed parameters.

    Cost is bounded by the input, whatever `size`: a window longer than an
    axis of length `n` needs hold no more than `n - 1` elements on either
    side of its centre, so wider windows are clamped to that, which changes
    no result. (Where a traced graph leaves a spatial length unknown, mode
    "within_channel" cannot clamp and raises a `ValueError` naming `size`
    for sizes above 255.) An empty input returns itself.

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
            where it can compute the call) or "portable" (`keras.ops`): see
            `keras_lrn.native_for_export` and the layer's documentation.
        window: "box" (`size` neighbours) or "exponential" (across
            channels; see above).
        window_scale: The exponential window's decay length, in channels
            (> 0); only with `window="exponential"`.
        groups: The number of equal contiguous channel groups the window
            stays inside (mode "across_channels"); it must divide the
            channels. Defaults to 1 (one group: every channel).

    Returns:
        A tensor of the shape and dtype of `x`. Half-precision inputs are
        computed in float32 and rounded once.

    Raises:
        ValueError: naming the argument whose value is not allowed, also
            where `alpha`, `beta`, `bias` or `window_scale` give no finite
            result in the compute dtype.

    Example:

    >>> x = keras.random.uniform((2, 8, 8, 16))
    >>> y = keras_lrn.ops.local_response_normalization(x, size=5)
    >>> tuple(y.shape)
    (2, 8, 8, 16)
    """
    arguments = _arguments.validate_arguments(
        size, alpha, beta, bias, mode, data_format, even_window_side,
        implementation, learnable=False, window=window,
        window_scale=window_scale, groups=groups,
    )
    del arguments["learned"]
    if implementation == "native":
        _dispatch.raise_if_native_unavailable(
            arguments["mode"], arguments["size"], arguments["data_format"])
    if not keras.utils.is_keras_tensor(x):
        x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) in _arguments.FLOAT_DTYPES:
        _value_gate.validate_for_compute_dtype(
            arguments["alpha"], arguments["beta"], arguments["bias"],
            x.dtype, arguments["window_scale"])
    return normalize(x, **arguments)


def normalize(x, size, alpha, beta, bias, mode, data_format,
              even_window_side, implementation, window="box",
              window_scale=None, learned=(), groups=1):
    """`local_response_normalization` for validated arguments.

    The one door to the computation, for every configuration: the layer
    validates its arguments once, in its constructor, and calls this on
    every call. The parameters named in `learned` are scalar tensors (a
    layer's learned parameters), the others Python numbers. Symbolic inputs
    (the functional API) get an `LRNOperation`'s symbolic call; tensors are
    checked (`_arguments.validate_input`) and computed by the kernel
    `_dispatch.choose_kernel` picks from its table.
    """
    if keras.utils.is_keras_tensor(x):
        return LRNOperation(
            size=size, alpha=alpha, beta=beta, bias=bias, mode=mode,
            data_format=data_format, even_window_side=even_window_side,
            implementation=implementation, window=window,
            window_scale=window_scale, groups=groups,
        ).symbolic_call(x)
    x = ops.convert_to_tensor(x)
    parameters = dict(alpha=alpha, beta=beta, bias=bias,
                      window_scale=window_scale)
    context = _dispatch.current_context(
        x, *(parameters[name] for name in learned))
    shape = _dispatch.static_shape(x, context)
    _arguments.validate_input(shape, x.dtype, mode, data_format)
    if 0 in shape:
        return x
    if groups > 1:
        return _grouped(x, shape, groups, data_format, lambda part: normalize(
            part, size, alpha, beta, bias, mode, data_format,
            even_window_side, implementation, window, window_scale, learned))
    lrn_window = _dispatch.make_window(context, shape, size, mode,
                                       data_format, even_window_side, window)
    chosen = _dispatch.choose_kernel(
        context, shape, x.dtype, lrn_window, implementation, mode, size,
        beta, bias, data_format, learned)
    return _dispatch.kernel(chosen)(x, lrn_window, alpha, beta, bias,
                                    window_scale, learned)


def _grouped(x, shape, groups, data_format, compute):
    """`compute` (ungrouped LRN across channels) within each of `groups`
    equal contiguous channel groups of `x`, an input of `shape`.

    A reshape gives each group its own channel axis, of `channels // groups`
    channels, so that the window runs along it and stops at the group's
    edges (zero padding there) and no window, box or exponential, crosses
    into the next group: channels_last `(batch, *spatial, channels)` becomes
    `(batch, *spatial, groups, channels // groups)`, channels_first
    `(batch, channels, *spatial)` becomes
    `(batch * groups, channels // groups, *spatial)`. Neither copies the
    input, and no group's values meet another's, so channels sharded across
    devices on group boundaries need no communication.

    Raises:
        ValueError: naming `groups` where it does not divide the channels.
    """
    _arguments.validate_groups_divide_channels(shape, groups, data_format)
    # the batch as -1: it stays dynamic in exported graphs
    shape = (-1,) + shape[1:]
    if None in shape:
        lengths = ops.shape(x)  # lengths unknown while tracing: tensors
        shape = tuple(lengths[axis] if length is None else length
                      for axis, length in enumerate(shape))
    if data_format == "channels_last":
        grouped = shape[:-1] + (groups, shape[-1] // groups)
    else:
        grouped = (-1, shape[1] // groups) + shape[2:]
    return ops.reshape(compute(ops.reshape(x, grouped)), shape)


class LRNOperation(keras.Operation):
    """The `keras.Operation` of `normalize`, for symbolic inputs of the
    functional API. Arguments are already validated."""

    def __init__(self, **arguments):
        super().__init__()
        self.arguments = arguments

    def compute_output_spec(self, x):
        _arguments.validate_input(
            _arguments.static_shape(x), x.dtype, self.arguments["mode"],
            self.arguments["data_format"])
        return keras.KerasTensor(x.shape, dtype=x.dtype)

    def call(self, x):
        return normalize(x, **self.arguments)
