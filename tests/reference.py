"""Independent references, written from each source's formula: float64
NumPy, and (for gradients of any order) the plain formula in `keras.ops`.

None of these calls keras_lrn: they are what keras_lrn is checked against.
"""

import itertools

import keras
import ml_dtypes
import numpy as np

NUMPY_DTYPES = {
    "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "float32": np.float32,
    "float64": np.float64,
}

# Hyperparameters for gradient checks: odd and even windows on both sides,
# every power path, both layouts and modes; alpha large enough that the
# second-order terms matter.
GRADIENT_CASES = [
    dict(size=5, alpha=1e-2, beta=0.75, bias=2.0),
    dict(size=4, alpha=3e-2, beta=0.5, bias=1.0, even_window_side="before"),
    dict(size=4, alpha=3e-2, beta=1.0, bias=1.0),
    dict(size=3, alpha=2e-2, beta=1.7, bias=0.5, data_format="channels_first"),
    dict(size=3, alpha=1e-2, beta=0.75, bias=2.0, mode="within_channel"),
    dict(size=2, alpha=1e-2, beta=0.6, bias=1.0, mode="within_channel",
         even_window_side="before", data_format="channels_first"),
]


def window_geometry(size, mode, data_format, even_window_side, rank):
    """(elements before the centre, elements after, axes summed over)."""
    before = size // 2 if even_window_side == "before" else (size - 1) // 2
    channel_axis = rank - 1 if data_format == "channels_last" else 1
    if mode == "across_channels":
        axes = [channel_axis]
    else:
        axes = [a for a in range(1, rank) if a != channel_axis]
    return before, size - 1 - before, axes


def lrn(x, size, alpha, beta, bias, mode="across_channels",
        data_format="channels_last", even_window_side="after"):
    """The canonical formula, summing every offset of the window explicitly:
    y = x / (bias + alpha * sum_{window} x^2) ** beta, zeros outside."""
    x = np.asarray(x, dtype=np.float64)
    total = window_sum(x**2, size, mode, data_format, even_window_side)
    with np.errstate(invalid="ignore"):
        return x / (bias + alpha * total) ** beta


def window_sum(values, size, mode="across_channels",
               data_format="channels_last", even_window_side="after"):
    """sum_{c' in window(c)} values[c'], zeros outside, in float64: the
    denominator's sum (of squares) or, with the other `even_window_side`,
    the transposed window a gradient sums over."""
    values = np.asarray(values, dtype=np.float64)
    rank = values.ndim
    before, after, axes = window_geometry(size, mode, data_format,
                                          even_window_side, rank)
    padded = np.pad(
        values, [(before, after) if a in axes else (0, 0) for a in range(rank)]
    )
    total = np.zeros_like(values)
    for offsets in itertools.product(range(size), repeat=len(axes)):
        index = [slice(None)] * rank
        for axis, offset in zip(axes, offsets):
            index[axis] = slice(offset, offset + values.shape[axis])
        total += padded[tuple(index)]
    return total


def caffe_across_channels(x_nchw, local_size, alpha, beta, k):
    """Caffe's LRNLayer::CrossChannelForward_cpu: scale = k + alpha / n *
    sum over [c - pre_pad, c + n - 1 - pre_pad], pre_pad = (n - 1) / 2."""
    x = np.asarray(x_nchw, dtype=np.float64)
    channels = x.shape[1]
    pre_pad = (local_size - 1) // 2
    scale = np.full_like(x, k)
    for c in range(channels):
        for j in range(c - pre_pad, c - pre_pad + local_size):
            if 0 <= j < channels:
                scale[:, c] += alpha / local_size * x[:, j] ** 2
    return x * scale ** (-beta)


def caffe_within_channel(x_nchw, local_size, alpha, beta):
    """Caffe's WITHIN_CHANNEL: square, average-pool (local_size x
    local_size, stride 1, pad (n - 1) / 2, Caffe's AVE pooling counting the
    padded area), then power(shift=1, scale=alpha, power=-beta), times x."""
    x = np.asarray(x_nchw, dtype=np.float64)
    height, width = x.shape[2:]
    pad = (local_size - 1) // 2
    pooled = np.zeros_like(x)
    for h in range(height):
        for w in range(width):
            hstart, wstart = h - pad, w - pad
            hend = min(hstart + local_size, height + pad)
            wend = min(wstart + local_size, width + pad)
            pool_size = (hend - hstart) * (wend - wstart)
            window = x[:, :, max(hstart, 0):min(hend, height),
                       max(wstart, 0):min(wend, width)]
            pooled[:, :, h, w] = (window**2).sum(axis=(2, 3)) / pool_size
    return x * (1.0 + alpha * pooled) ** (-beta)


def onnx_lrn(x_nchw, size, alpha, beta, bias):
    """The ONNX LRN operator's definition: square_sum over
    max(0, c - floor((size - 1) / 2)) <= i <= min(C - 1, c + ceil((size -
    1) / 2)); Y = X / (bias + alpha / size * square_sum) ** beta."""
    x = np.asarray(x_nchw, dtype=np.float64)
    channels = x.shape[1]
    square_sum = np.zeros_like(x)
    for c in range(channels):
        low = max(0, c - int(np.floor((size - 1) / 2)))
        high = min(channels - 1, c + int(np.ceil((size - 1) / 2)))
        square_sum[:, c] = (x[:, low:high + 1] ** 2).sum(axis=1)
    return x / (bias + alpha / size * square_sum) ** beta


def numerical_gradient(function, x, upstream, step=1e-6):
    """Central differences of sum(function(x) * upstream) in float64."""
    x = np.asarray(x, dtype=np.float64)
    gradient = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = x.copy()
        shifted[index] += step
        plus = np.sum(function(shifted) * upstream)
        shifted[index] -= 2 * step
        minus = np.sum(function(shifted) * upstream)
        gradient[index] = (plus - minus) / (2 * step)
    return gradient


def assert_matches_in_dtype(actual, expected, dtype):
    """float32/float64 within a relative bound of the float64 `expected`;
    half precision within one unit in the last place of it (a single
    rounding of the float32 computation)."""
    actual = np.asarray(actual).astype(np.float64)
    if dtype == "float64":
        np.testing.assert_allclose(actual, expected, rtol=1e-12)
    elif dtype == "float32":
        np.testing.assert_allclose(actual, expected, rtol=1e-5)
    else:
        finfo = ml_dtypes.finfo(NUMPY_DTYPES[dtype])
        exponent = np.floor(np.log2(np.maximum(np.abs(expected),
                                               float(finfo.tiny))))
        one_ulp = 2.0 ** (exponent - finfo.nmant)
        assert np.all(np.abs(actual - expected) <= one_ulp), (
            np.max(np.abs(actual - expected) / one_ulp))


def differentiable_lrn(x, size, alpha, beta, bias, mode="across_channels",
                       data_format="channels_last", even_window_side="after"):
    """The formula in plain `keras.ops` (pad, one slice per offset, power),
    on any backend, for autodiff of any order: the reference for
    second-order gradients."""
    rank = len(x.shape)
    before, after, axes = window_geometry(size, mode, data_format,
                                          even_window_side, rank)
    total = keras.ops.square(x)
    for axis in axes:
        padded = keras.ops.pad(total, [(before, after) if a == axis
                                       else (0, 0) for a in range(rank)])
        terms = []
        for offset in range(size):
            index = [slice(None)] * rank
            index[axis] = slice(offset, offset + x.shape[axis])
            terms.append(padded[tuple(index)])
        total = sum(terms[1:], terms[0])
    # beta as a tensor of x's dtype: PyTorch rounds a Python float to float32
    beta = keras.ops.convert_to_tensor(beta, dtype=x.dtype)
    return x / keras.ops.power(bias + alpha * total, beta)


def exponential_lrn(x, alpha, beta, bias, window_scale,
                    data_format="channels_last"):
    """The exponential window (Miller, Chung & Miller, 2022), with an
    explicit double loop over channel pairs: y_c = x_c / (bias + alpha *
    sum_{c'} exp(-|c - c'| / window_scale) * x_c'^2) ** beta."""
    x = np.asarray(x, dtype=np.float64)
    channels_last = np.moveaxis(x, 1, -1) if data_format == "channels_first" else x
    channels = channels_last.shape[-1]
    total = np.zeros_like(channels_last)
    for c in range(channels):
        for other in range(channels):
            total[..., c] += (np.exp(-abs(c - other) / window_scale)
                              * channels_last[..., other] ** 2)
    y = channels_last / (bias + alpha * total) ** beta
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


def layer_lrn(x, **arguments):
    """The formula a layer with these constructor arguments computes (its
    starting values; `learnable` does not change them): `exponential_lrn`
    for window="exponential", else `lrn`."""
    arguments = {k: v for k, v in arguments.items() if k != "learnable"}
    if arguments.pop("window", "box") == "exponential":
        return exponential_lrn(
            x, arguments["alpha"], arguments["beta"], arguments["bias"],
            arguments["window_scale"],
            arguments.get("data_format", "channels_last"))
    return lrn(x, **arguments)


def differentiable_exponential_lrn(x, alpha, beta, bias, window_scale,
                                   data_format="channels_last"):
    """The exponential window in plain `keras.ops` with a distance matrix,
    for autodiff with respect to `x` and every parameter (tensors allowed)."""
    channel_axis = len(x.shape) - 1 if data_format == "channels_last" else 1
    channels = x.shape[channel_axis]
    positions = np.arange(channels)
    distances = keras.ops.convert_to_tensor(
        np.abs(positions[:, None] - positions[None, :]).astype(
            keras.backend.standardize_dtype(x.dtype)))
    kernel = keras.ops.exp(-distances / window_scale)
    squares = keras.ops.moveaxis(keras.ops.square(x), channel_axis, -1)
    total = keras.ops.moveaxis(
        keras.ops.einsum("...i,ij->...j", squares, kernel), -1, channel_axis)
    beta = keras.ops.convert_to_tensor(beta, dtype=x.dtype)
    return x / keras.ops.power(bias + alpha * total, beta)
