"""LRN with tensor-valued (learnable) parameters and the exponential window.

```
y = x / (bias + alpha * window_sum(x ** 2)) ** beta
```

where `alpha`, `beta`, `bias` (and the exponential window's
`window_scale`) may be tensors, such as a layer's trainable weights. The
window is the box of `keras_lrn.ops` or, across channels, the exponential
window of Miller, Chung & Miller (ICLR 2022):

```
window_sum(q)[c] = sum(exp(-|c - c'| / window_scale) * q[c'] for every c')
```

Everything is written in `keras.ops`. Gradients are the backend's autodiff,
except for the box window with alpha, beta and bias all learned on
TensorFlow and JAX, whose hand-written gradient (`_box_lrn_with_gradient`)
keeps the learned layer within about 1.5x the fixed one under XLA. Either
way gradients with respect to `x` and every parameter are exact, to second
order in `x`, under XLA and in mixed precision (half inputs are computed in
float32 and rounded once).
"""

import math

import keras
from keras import ops

from keras_lrn import ops as lrn_ops

PARAMETERS = ("alpha", "beta", "bias", "window_scale")
LEARNABLE_BY_DEFAULT = ("alpha", "beta", "bias")
WINDOWS = ("box", "exponential")

# Up to this many channels the exponential window sum is a matrix product
# with the C x C kernel; above, two doubling scans along the channel axis.
# Measured under XLA on the CPU, TensorFlow and JAX (benchmarks/
# learned_bench.py, benchmarks/learned_results.md): the product is 3-4x
# faster at C = 96 and 384 and 1.6x at C = 1536; the gap halves per 4x
# channels, so the scans would win from about 4096, where the kernel alone
# holds 64 MiB. The product is the cheaper path up to 2048.
MATRIX_PRODUCT_MAX_CHANNELS = 2048


def validate_arguments(learnable, window, window_scale, mode, alpha, beta,
                       bias, implementation):
    """Checks the learned-LRN arguments of the layer.

    Returns:
        The names of the learned parameters, a tuple in `PARAMETERS` order
        (empty for `learnable=False`).

    Raises:
        ValueError: naming the argument whose value is not allowed.
    """
    if window not in WINDOWS:
        raise ValueError(
            f"Argument `window` must be one of {WINDOWS}. "
            f"Received: window={window!r}"
        )
    if window == "exponential":
        lrn_ops.real_argument(
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
    if learnable is True:
        learned = LEARNABLE_BY_DEFAULT
    elif learnable is False:
        learned = ()
    elif isinstance(learnable, (tuple, list)) and learnable and all(
        name in PARAMETERS for name in learnable
    ) and len(set(learnable)) == len(learnable):
        learned = tuple(name for name in PARAMETERS if name in learnable)
    else:
        raise ValueError(
            "Argument `learnable` must be False, True (alpha, beta and bias) "
            f"or a non-empty tuple of distinct names from {PARAMETERS}. "
            f"Received: learnable={learnable!r}"
        )
    if "window_scale" in learned and window != "exponential":
        raise ValueError(
            "Only window='exponential' has a `window_scale` to learn. "
            f"Received: learnable={learnable!r} with window={window!r}"
        )
    for name, value in (("alpha", alpha), ("beta", beta)):
        if name in learned and value == 0:
            raise ValueError(
                f"A learned `{name}` is stored as its logarithm and must "
                f"start > 0. Received: {name}={value!r} with "
                f"learnable={learnable!r}"
            )
    if (learned or window != "box") and implementation == "native":
        raise ValueError(
            "implementation='native' calls tf.nn.local_response_normalization,"
            " which has neither learned parameters nor an exponential window."
            f" Received: implementation={implementation!r} with "
            f"learnable={learnable!r}, window={window!r}"
        )
    return learned


def to_weight(value):
    """The value a learned parameter's weight holds: its logarithm, so that
    the parameter stays > 0 and an optimizer's steps move it by factors
    (alpha from 1e-4 to 1e-1 is a change of 6.9 in the weight)."""
    return math.log(value)


def from_weight(weight):
    """The parameter a weight holds (`exp`, inverting `to_weight`)."""
    return ops.exp(weight)


def learnable_lrn(x, alpha, beta, bias, window):
    """LRN with parameters that may be tensors (learned weights).

    Args:
        x: A float tensor.
        alpha, beta, bias: Scalars, Python floats or tensors (learned
            parameters; a float `beta` takes `keras_lrn.ops`' fast paths for
            0.5, 0.75 and 1).
        window: The window, whose `sum` method sums the squared input in
            the compute dtype: an `ExponentialWindow` or a box,
            `keras_lrn.ops.Window` (with tensor alpha, beta and bias, on
            TensorFlow and JAX, a hand-written gradient:
            `_box_lrn_with_gradient`).

    Returns:
        `x / (bias + alpha * window_sum(x ** 2)) ** beta`, in the dtype of
        `x`; half precision is computed in float32 and rounded once.
    """
    input_dtype = keras.backend.standardize_dtype(x.dtype)
    compute_dtype = lrn_ops.compute_dtype_of(input_dtype)
    x = ops.cast(x, compute_dtype)
    alpha = _in_dtype(alpha, compute_dtype)
    bias = _in_dtype(bias, compute_dtype)
    if (
        isinstance(window, lrn_ops.Window)
        and not any(isinstance(v, (int, float)) for v in (alpha, beta, bias))
        and keras.backend.backend() in ("tensorflow", "jax")
    ):
        y = _box_lrn_with_gradient(x, alpha, _in_dtype(beta, compute_dtype),
                                   bias, window)
        return ops.cast(y, input_dtype)
    t = bias + alpha * window.sum(ops.square(x))
    if isinstance(beta, (int, float)):
        beta_path = beta if beta in lrn_ops.FAST_BETAS else None
        y = x * lrn_ops._inverse_power(t, beta_path,
                                       _as_tensor(beta, compute_dtype))
    else:
        y = x * ops.exp(-_in_dtype(beta, compute_dtype) * ops.log(t))
    return ops.cast(y, input_dtype)


def _box_lrn_with_gradient(x, alpha, beta, bias, window):
    """The box-window LRN with alpha, beta and bias all tensors, and a
    hand-written vector-Jacobian product that keeps one tensor, `t` or
    `log(t)`, from the forward pass.

    With `t = bias + alpha * total`, `total = window_sum(x ** 2)`,
    `y = x * exp(-beta * log(t))` and `u = upstream * x * t ** -(beta + 1)`:
    `dx = upstream * t ** -beta - 2 alpha beta x * window_sum_transposed(u)`,
    `dalpha = -beta * sum(u * total)`, `dbias = -beta * sum(u)`,
    `dbeta = -sum(upstream * y * log(t))`. `total` is recomputed from `x`
    (a few additions; `(t - bias) / alpha` would cancel for small alpha).
    Built from differentiable ops, so second-order gradients with respect to
    `x` follow. Autodiff of the formula cost 1.6-3.9x the fixed layer under
    XLA, mostly because XLA fused `log(t)` into the serial loop of the sum
    for `dbeta`. On JAX (`jax.custom_vjp`; `jax.custom_gradient` ran
    slower) the residual is `log(t)`, which avoids that; on TensorFlow
    keeping `t` and recomputing `log(t)` measured faster
    (benchmarks/learned_results.md). PyTorch, with no XLA, differentiates
    the formula.
    """

    def forward(x, alpha, beta, bias):
        t = bias + alpha * window.sum(ops.square(x))
        log_t = ops.log(t)
        return x * ops.exp(-beta * log_t), t, log_t

    def backward(x, alpha, beta, bias, t, log_t, upstream):
        upstream = ops.cast(upstream, x.dtype)
        scaled = upstream * ops.exp(-beta * log_t)
        u = (upstream * x * ops.exp(-(beta + 1.0) * log_t) if t is None
             else scaled * x / t)
        dx = scaled - (2.0 * alpha * beta) * x * window.transposed().sum(u)
        total = window.sum(ops.square(x))
        return (dx, -beta * ops.sum(u * total),
                -ops.sum(scaled * x * log_t), -beta * ops.sum(u))

    if keras.backend.backend() == "jax":
        import jax

        @jax.custom_vjp
        def lrn(x, alpha, beta, bias):
            return forward(x, alpha, beta, bias)[0]

        def lrn_forward(x, alpha, beta, bias):
            y, _, log_t = forward(x, alpha, beta, bias)
            return y, (x, alpha, beta, bias, log_t)

        def lrn_backward(residuals, upstream):
            return backward(*residuals[:4], None, residuals[4], upstream)

        lrn.defvjp(lrn_forward, lrn_backward)
        return lrn(x, alpha, beta, bias)

    @ops.custom_gradient
    def lrn(x, alpha, beta, bias):
        y, t, _ = forward(x, alpha, beta, bias)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return backward(x, alpha, beta, bias, t, ops.log(t), upstream)

        return y, grad

    return lrn(x, alpha, beta, bias)


class ExponentialWindow:
    """The exponential window across channels: weight
    `exp(-|c - c'| / scale)` for every channel c' of channel c, summed by
    `method` (see `exponential_window_sum`)."""

    def __init__(self, scale, axis, method="auto"):
        self.scale = scale
        self.axis = axis
        self.method = method

    def sum(self, values):
        return exponential_window_sum(values, self.scale, self.axis,
                                      self.method)


def exponential_window_sum(values, window_scale, axis,
                           method="auto"):
    """`sum_{c'} exp(-|c - c'| / window_scale) * values[c']` along `axis`.

    Args:
        values: A float tensor with a known length along `axis`.
        window_scale: The decay length (> 0), a float or scalar tensor.
        axis: The axis summed over (the channel axis).
        method: "matrix" (a product with the C x C kernel: C multiply-adds
            per element), "scan" (two doubling scans: 2 * ceil(log2 C)
            shifted multiply-adds per element) or "auto" (the product up to
            `MATRIX_PRODUCT_MAX_CHANNELS` channels, the scans above).
    """
    axis = axis % len(values.shape)
    channels = values.shape[axis]
    decay = ops.exp(-1.0 / _as_tensor(window_scale, values.dtype))
    if method == "auto":
        method = ("matrix" if channels <= MATRIX_PRODUCT_MAX_CHANNELS
                  else "scan")
    if method == "matrix":
        return _exponential_sum_by_matrix(values, decay, axis, channels)
    if method == "scan":
        return _exponential_sum_by_scans(values, decay, axis, channels)
    raise ValueError(
        "Argument `method` must be one of ('auto', 'matrix', 'scan'). "
        f"Received: method={method!r}"
    )


def _exponential_sum_by_matrix(values, decay, axis, channels):
    """The sum as a product with `decay ** |c - c'|` (symmetric)."""
    positions = ops.arange(channels, dtype=values.dtype)
    distances = ops.abs(positions[:, None] - positions[None, :])
    # decay ** d as exp(d * log(decay)): exact at d = 0, finite gradients
    kernel = ops.exp(distances * ops.log(decay))
    last = len(values.shape) - 1
    if axis != last:
        values = ops.moveaxis(values, axis, last)
    if keras.backend.backend() == "torch":
        # Keras's PyTorch `matmul` returned float32 for float64 operands
        total = ops.einsum("...c,cd->...d", values, kernel)
    else:
        # TensorFlow's einsum with an ellipsis ran 30-100x slower under XLA
        total = ops.matmul(values, kernel)
    return total if axis == last else ops.moveaxis(total, last, axis)


def _exponential_sum_by_scans(values, decay, axis, channels):
    """The sum as two first-order recursions, run as doubling scans.

    `forward[c] = values[c] + decay * forward[c - 1]` and its mirror image
    `backward` each hold one side of the window and the centre, so the sum
    is `forward + backward - values`. A doubling (Hillis-Steele) scan
    computes each in ceil(log2 C) steps, `forward[c] += decay ** d *
    forward[c - d]` for d = 1, 2, 4, ...: every term is a product of
    positive weights <= 1 and positive values, so no cancellation occurs
    (the closed form `decay ** c * cumsum(decay ** -c * values)` would
    overflow and cancel).
    """
    rank = len(values.shape)

    def shifted(tensor, distance, forward):
        index = [slice(None)] * rank
        index[axis] = (slice(None, channels - distance) if forward
                       else slice(distance, None))
        pad_width = [(0, 0)] * rank
        pad_width[axis] = (distance, 0) if forward else (0, distance)
        return ops.pad(tensor[tuple(index)], pad_width)

    forward = backward = values
    weight, distance = decay, 1
    while distance < channels:
        forward = forward + weight * shifted(forward, distance, True)
        backward = backward + weight * shifted(backward, distance, False)
        weight, distance = weight * weight, 2 * distance
    return forward + backward - values


def _in_dtype(value, dtype):
    """A tensor in `dtype`; a Python number stays one (weakly typed)."""
    if isinstance(value, (int, float)):
        return value
    return ops.cast(value, dtype)


def _as_tensor(value, dtype):
    """A tensor in `dtype`, a Python number converted without a float32
    rounding on the way."""
    if isinstance(value, (int, float)):
        return ops.convert_to_tensor(value, dtype=dtype)
    return ops.cast(value, dtype)
