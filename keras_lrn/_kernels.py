"""The math of LRN: window sums, one forward, one backward.

```
y = x / (bias + alpha * window_sum(x ** 2)) ** beta
```

Every configuration is this one computation: the window is a box
(`BoxWindow`) or, across channels, exponential (`ExponentialWindow`), and
alpha, bias, beta and the exponential window's scale reach it as one runtime
tensor of coefficients (`coefficients`), whether they are constants or a
layer's learned weights. `lrn` attaches the hand-written backward, which
returns the gradients with respect to the input and, for the learned
parameters, with respect to the coefficients. The passes are compiled once
per `Structure` on each backend (`compiled_pass`).
"""

import dataclasses
import functools
import math

import keras
from keras import ops

from keras_lrn import _arguments

# Betas with a power path of their own (`inverse_power`); other betas, and
# learned ones, are a runtime value of one general path.
FAST_BETAS = (0.0, 0.5, 0.75, 1.0)
# The widest box window that is not clamped to the input when an axis it
# spans has no static length (a traced graph with unknown spatial
# dimensions).
LARGEST_UNCLAMPED_SIZE = 255
# Up to this many channels the exponential window sum is a matrix product
# with the C x C kernel; above, two doubling scans along the channel axis.
# Measured under XLA on the CPU, TensorFlow and JAX (benchmarks/
# learned_bench.py, benchmarks/learned_results.md): the product is 3-4x
# faster at C = 96 and 384 and 1.6x at C = 1536; the gap halves per 4x
# channels, so the scans would win from about 4096, where the kernel alone
# holds 64 MiB. The product is the cheaper path up to 2048.
MATRIX_PRODUCT_MAX_CHANNELS = 2048
# The longest box window along one axis whose sum JAX's forward takes from
# shifted copies of the squares (`_box_sum_of_shifts`).
SHIFTED_MAX_SIZE = 8
# The runtime coefficients, in the order of the tensor `coefficients` makes.
ALPHA, BIAS, BETA, GRADIENT_FACTOR, WINDOW_SCALE = range(5)
COEFFICIENT_OF = {"alpha": ALPHA, "bias": BIAS, "beta": BETA,
                  "window_scale": WINDOW_SCALE}


def _channel_and_spatial_axes(rank, data_format):
    if data_format == "channels_last":
        return rank - 1, tuple(range(1, rank - 1))
    return 1, tuple(range(2, rank))


@dataclasses.dataclass(frozen=True)
class BoxWindow:
    """The box window: `size` neighbours along each axis it spans.

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
        channel_axis, spatial_axes = _channel_and_spatial_axes(
            len(shape), data_format)
        axes = ((channel_axis,) if mode == "across_channels"
                else spatial_axes)
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
        return BoxWindow(self.axes, self.after, self.before)

    def sum(self, values, scale=None):
        """Sums `values` over the window of each element, zeros outside.
        (`scale` is unused: a box has none.)"""
        for axis in self.axes:
            values = _box_sum_along_axis(values, axis, self.before,
                                         self.after)
        return values


def _box_sum_along_axis(values, axis, before, after):
    """`out[i] = sum(values[i - before : i + after + 1])` along `axis`.

    This is a depthwise convolution with a ones kernel along one axis (the
    within-channel box is one such pass per spatial axis). It sums doubling
    windows (1, 2, 4, ...) of the zero-padded input and adds the ones that
    make up `size` from its binary digits: log2(size) + popcount additions
    instead of size - 1, each exact in floating point (a running cumsum
    difference would lose float32 precision). Slices are written relative
    to both ends, so spatial lengths need not be known. Chosen over shifted
    single-element sums, a depthwise convolution of ones and `reduce_window`,
    which were slower on every backend measured (benchmarks/RESULTS.md).

    Every addition adds two slices: the window of a `size` that is not a
    power of two is its largest power-of-two window plus the sliced window
    of the rest, never a chain of additions. TensorFlow's graph optimizer
    (Grappler) rewrites a chain of three or more additions into one `AddN`
    and then into an `AccumulateNV2`, which XLA cannot compile: that split
    the XLA cluster of a plain `tf.function` in two and made sizes 9-15
    cost 3-4x size 5 there (benchmarks/RESULTS.md, "Every backend").
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

    # windows[w] holds the sums of w consecutive padded elements; its length
    # is length + size - w.
    windows = {1: padded}
    width = 1
    while 2 * width <= size:
        previous = windows[width]
        windows[2 * width] = ops.add(
            shifted(previous, 0, width), shifted(previous, width, 0)
        )
        width *= 2

    def window(width):
        if width not in windows:
            head = 1 << (width.bit_length() - 1)
            windows[width] = ops.add(
                shifted(windows[head], 0, width - head),
                shifted(window(width - head), head, 0),
            )
        return windows[width]

    return window(size)


def _box_sum_of_shifts(values, axis, before, after):
    """The window sum of `_box_sum_along_axis` as shifted copies of
    `values` with zeros concatenated at the ends (no padded tensor). Under
    XLA on JAX the squares and their sum then fuse into one loop, where a
    padded tensor is written to memory and read back: JAX's forward alone
    uses it, for short windows (`SHIFTED_MAX_SIZE`); with the backward's
    residuals it was slower."""
    rank = len(values.shape)

    def part(start, stop):
        index = [slice(None)] * rank
        index[axis] = slice(start, stop)
        return values[tuple(index)]

    total = values
    for shift in range(1, before + 1):
        total = ops.add(total, ops.concatenate(
            [ops.zeros_like(part(None, shift)), part(None, -shift)], axis))
    for shift in range(1, after + 1):
        total = ops.add(total, ops.concatenate(
            [part(shift, None), ops.zeros_like(part(None, shift))], axis))
    return total


@dataclasses.dataclass(frozen=True)
class ExponentialWindow:
    """The exponential window across channels: channel c' weighs
    `exp(-|c - c'| / scale)` in the sum of channel c, for every channel.

    The scale is a runtime value (`sum(values, scale)`), so a learned scale
    compiles nothing new. The window is symmetric: it is its own transpose.

    Attributes:
        axis: The channel axis, counted from 0.
        channels: Its length.
        method: "matrix" (a product with the C x C kernel: C multiply-adds
            per element) or "scan" (two doubling scans: 2 * ceil(log2 C)
            shifted multiply-adds per element).
    """

    axis: int
    channels: int
    method: str

    @classmethod
    def of(cls, shape, data_format, method="auto"):
        """The window for an input of `shape`; "auto" takes the product up
        to `MATRIX_PRODUCT_MAX_CHANNELS` channels and the scans above."""
        axis, _ = _channel_and_spatial_axes(len(shape), data_format)
        channels = shape[axis]
        if method == "auto":
            method = ("matrix" if channels <= MATRIX_PRODUCT_MAX_CHANNELS
                      else "scan")
        return cls(axis, channels, method)

    def transposed(self):
        return self

    def sum(self, values, scale):
        """`sum_{c'} exp(-|c - c'| / scale) * values[c']` along the axis."""
        if self.method == "matrix":
            return self._matrix_product(values, self._kernel(values, scale))
        forward, backward, _, _ = self._scans(values, scale, False)
        return forward + backward - values

    def scale_derivative_sum(self, values, scale):
        """The derivative of `sum(values, scale)` with respect to `scale`:
        `sum_{c'} exp(-|c - c'| / scale) * |c - c'| / scale**2 * values[c']`.
        """
        if self.method == "matrix":
            kernel = self._kernel(values, scale)
            distances = self._distances(values)
            return self._matrix_product(
                values, kernel * (distances / scale) / scale)
        _, _, forward, backward = self._scans(values, scale, True)
        return (forward + backward) / scale / scale

    def _distances(self, values):
        positions = ops.arange(self.channels, dtype=values.dtype)
        return ops.abs(positions[:, None] - positions[None, :])

    def _kernel(self, values, scale):
        # exp(-d / scale) is exactly 1 at d = 0 and underflows to 0 far away:
        # never 0 * log(0)
        return ops.exp(-self._distances(values) / scale)

    def _matrix_product(self, values, kernel):
        last = len(values.shape) - 1
        if self.axis != last:
            values = ops.moveaxis(values, self.axis, last)
        if keras.backend.backend() == "torch":
            # Keras's PyTorch `matmul` returned float32 for float64 operands
            total = ops.einsum("...c,cd->...d", values, kernel)
        else:
            # TensorFlow's einsum with an ellipsis ran 30-100x slower under XLA
            total = ops.matmul(values, kernel)
        return total if self.axis == last else ops.moveaxis(total, last,
                                                            self.axis)

    def _scans(self, values, scale, with_distances):
        """The two one-sided sums as doubling (Hillis-Steele) scans.

        `forward[c] = sum_{j >= 0} decay**j * values[c - j]`, and `backward`
        its mirror image, each computed in ceil(log2 C) steps:
        `forward[c] += decay**d * forward[c - d]` for d = 1, 2, 4, ... Every
        term is a product of positive weights <= 1 and positive values, so
        no cancellation occurs (the closed form `decay**c * cumsum(decay**-c
        * values)` would overflow and cancel). With `with_distances`, the
        distance-weighted sums `sum_j j * decay**j * values[c - j]` are
        carried along: after a step of d, `weighted[c] += decay**d *
        (weighted[c - d] + d * forward[c - d])`.
        """
        rank = len(values.shape)
        axis, channels = self.axis, self.channels

        def shifted(tensor, distance, forward):
            index = [slice(None)] * rank
            index[axis] = (slice(None, channels - distance) if forward
                           else slice(distance, None))
            pad_width = [(0, 0)] * rank
            pad_width[axis] = (distance, 0) if forward else (0, distance)
            return ops.pad(tensor[tuple(index)], pad_width)

        decay = ops.exp(-1.0 / scale)
        forward = backward = values
        weighted_forward = weighted_backward = None
        if with_distances:
            weighted_forward = weighted_backward = ops.zeros_like(values)
        weight, distance = decay, 1
        while distance < channels:
            if with_distances:
                weighted_forward = weighted_forward + weight * shifted(
                    weighted_forward + distance * forward, distance, True)
                weighted_backward = weighted_backward + weight * shifted(
                    weighted_backward + distance * backward, distance, False)
            forward = forward + weight * shifted(forward, distance, True)
            backward = backward + weight * shifted(backward, distance, False)
            weight, distance = weight * weight, 2 * distance
        return forward, backward, weighted_forward, weighted_backward


def inverse_power(t, beta_path, beta):
    """`t ** -beta` for t > 0, with square roots for the common betas.

    `beta_path` is beta itself where it is one of `FAST_BETAS`, known when
    the function is traced, "learned" for a learned beta, or `None` for the
    general path, which raises `t` to the runtime value `beta` (a scalar
    tensor in t's dtype).
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
    if beta_path == "learned":
        # a learned beta: `pow` was 3-4x slower forward and backward under
        # XLA (benchmarks/learned_bench.py)
        return ops.exp(-beta * ops.log(t))
    return ops.power(t, -beta)


def divide_by_power(x, t, beta_path, beta):
    """`x * t ** -beta` (t > 0), the forward's last step: for the betas 0.5,
    0.75 and 1 a division of `x` by `sqrt(t)`, `sqrt(t) * sqrt(sqrt(t))`
    or `t`, else `x * inverse_power(...)`.

    XLA's CPU `rsqrt` is slower than a square root and a division: for
    AlexNet's beta 0.75 on 32x55x55x96 the fused JAX forward took 16.1 ms
    with `rsqrt(t) * sqrt(rsqrt(t))` and 13.6 ms with this, beside 10.2 ms
    for `x * 2.0` (one interleaved probe); the same probe of a padded-slices
    formula under TensorFlow's XLA took 24.9 ms with `rsqrt` and 13.5 ms
    with the division. A `t` that overflowed to infinity still gives 0, as
    `rsqrt` did.
    """
    if beta_path == 0.5:
        return x / ops.sqrt(t)
    if beta_path == 0.75:
        root = ops.sqrt(t)
        return x / (root * ops.sqrt(root))
    if beta_path == 1:
        return x / t
    return x * inverse_power(t, beta_path, beta)


@dataclasses.dataclass(frozen=True)
class Structure:
    """What a compiled pass depends on, beside the input's shape.

    Everything else (alpha, bias, a general or learned beta, the window's
    scale) reaches the compiled functions as runtime values
    (`coefficients`), so the number of compiled programs grows with the
    structures in use, not with the parameter values.

    Attributes:
        window: A `BoxWindow` or an `ExponentialWindow`.
        input_dtype: The input's dtype (standardized).
        rank: The input's rank.
        beta_path: beta where it is fixed and one of `FAST_BETAS`,
            "learned" for a learned beta, else `None`.
        alpha_is_zero: Whether alpha is fixed at 0: the window sum is then
            skipped, so that squares that overflow cannot give `0 * inf`.
        learned: The names of the learned parameters, whose gradients the
            backward computes (the others get 0).
    """

    window: object
    input_dtype: str
    rank: int
    beta_path: float | str | None
    alpha_is_zero: bool
    learned: tuple

    @classmethod
    def of(cls, x, window, alpha, beta, learned):
        if "beta" in learned:
            beta_path = "learned"
        else:
            beta_path = beta if beta in FAST_BETAS else None
        return cls(
            window=window,
            input_dtype=keras.backend.standardize_dtype(x.dtype),
            rank=len(x.shape),
            beta_path=beta_path,
            alpha_is_zero="alpha" not in learned and alpha == 0,
            learned=tuple(learned),
        )


def coefficients(alpha, beta, bias, window_scale, dtype):
    """alpha, bias, beta, the backward's `2 * alpha * beta` and the window's
    scale (1 for a box) as one tensor in the compute dtype of `dtype`.

    Each may be a Python number (rounded once from Python's float64) or a
    scalar tensor, such as a learned parameter, whose gradient then flows
    through this tensor.
    """
    compute_dtype = _arguments.compute_dtype_of(dtype)
    values = (alpha, bias, beta, None, 1.0 if window_scale is None
              else window_scale)
    if all(isinstance(value, (int, float)) or value is None
           for value in values):
        return ops.convert_to_tensor(_constant_coefficients(
            alpha, beta, bias, window_scale, compute_dtype))
    alpha, bias, beta, _, window_scale = (
        None if value is None else ops.cast(value, compute_dtype)
        if not isinstance(value, (int, float))
        else ops.convert_to_tensor(value, dtype=compute_dtype)
        for value in values
    )
    return ops.stack([alpha, bias, beta, 2.0 * alpha * beta, window_scale])


def forward(x, c, structure, shifted=False):
    """Returns (y, residual) in the compute dtype: `t = bias + alpha *
    sum(x^2)`, `y = x * t ** -beta`, and what the backward needs of the
    forward: `t`, or `log(t)` for a learned beta (`exp(-beta * log(t))`
    and the beta gradient's `log(t)` then share it). With `shifted`, a
    short box window along one axis sums shifted copies of the squares
    (`_box_sum_of_shifts`)."""
    window = structure.window
    if structure.alpha_is_zero:
        t = ops.zeros_like(x) + c[BIAS]
    elif (shifted and isinstance(window, BoxWindow) and len(window.axes) == 1
            and window.before + window.after < SHIFTED_MAX_SIZE):
        t = c[BIAS] + c[ALPHA] * _box_sum_of_shifts(
            ops.square(x), window.axes[0], window.before, window.after)
    else:
        t = c[BIAS] + c[ALPHA] * window.sum(ops.square(x), c[WINDOW_SCALE])
    if structure.beta_path == "learned":
        log_t = ops.log(t)
        return x * ops.exp(-c[BETA] * log_t), log_t
    return divide_by_power(x, t, structure.beta_path, c[BETA]), t


def backward(x, upstream, residual, c, structure):
    """The vector-Jacobian product of LRN, from the forward's residual
    (`t`, or `log(t)` for a learned beta).

    With `y_i = x_i * s_i`, `s_i = t_i ** -beta`, `S = window_sum(x ** 2)`
    and `u_i = upstream_i * y_i / t_i`:

    ```
    dx_j = upstream_j * s_j - 2 alpha beta x_j * sum_{i: j in window(i)} u_i
    dalpha = -beta * sum(u * S)        dbias = -beta * sum(u)
    dbeta = -sum(upstream * y * log(t))
    dscale = -alpha * beta * sum(u * dS/dscale)
    ```

    Parameter gradients are computed only for `structure.learned` (0 for
    the others). `s` is recomputed from the residual elementwise, which
    costs less than storing it. Built from differentiable ops, so gradients of any
    order with respect to `x` follow.

    Returns:
        `(dx, dc)`: the gradients with respect to `x` and to the
        coefficients tensor `c`.
    """
    if structure.beta_path == "learned":
        log_t = residual
        s = ops.exp(-c[BETA] * log_t)
        s_over_t = ops.exp(-(c[BETA] + 1.0) * log_t)
    else:
        s = inverse_power(residual, structure.beta_path, c[BETA])
        s_over_t = s / residual
    scaled = upstream * s
    if structure.alpha_is_zero:
        dx = scaled
        u = upstream * x * s_over_t if structure.learned else None
    else:
        u = upstream * x * s_over_t
        dx = scaled - c[GRADIENT_FACTOR] * x * structure.window.transposed(
        ).sum(u, c[WINDOW_SCALE])
    gradients = [ops.zeros((), dtype=c.dtype)] * 5
    for name in structure.learned:
        if name == "alpha":
            total = structure.window.sum(ops.square(x), c[WINDOW_SCALE])
            gradient = -c[BETA] * ops.sum(u * total)
        elif name == "bias":
            gradient = -c[BETA] * ops.sum(u)
        elif name == "beta":
            gradient = -ops.sum(scaled * x * log_t)
        else:
            gradient = -c[ALPHA] * c[BETA] * ops.sum(
                u * structure.window.scale_derivative_sum(
                    ops.square(x), c[WINDOW_SCALE]))
        gradients[COEFFICIENT_OF[name]] = ops.cast(gradient, c.dtype)
    return dx, ops.stack(gradients)


@functools.lru_cache(maxsize=256)
def compiled_pass(structure):
    """The forward and backward passes for one `Structure`.

    Both take the runtime coefficients (`coefficients`) beside the tensors,
    so a new alpha or bias compiles nothing, and half-precision inputs are
    computed in float32 and rounded once.

    On TensorFlow each is XLA-compiled (`_xla_compiled_on_tensorflow`)
    also when called from eager mode or a plain `tf.function`: XLA fuses
    the window sum and the power into one pass over memory, where
    TensorFlow's graph executor runs (and stores) every op separately, and
    is then faster than `tf.nn.local_response_normalization`
    (benchmarks/RESULTS.md). Inside an outer XLA function they are inlined.
    Each function is traced once per structure: `reduce_retracing` relaxes
    the dimensions, so new batch or image sizes only recompile.

    On JAX `compiled_lrn` compiles both into one function. On PyTorch the
    functions run eagerly (a fixed box window has its own kernels,
    `keras_lrn._torch_kernels`); under `torch.compile` `lrn` calls this
    function unwrapped, so that Dynamo meets no cache.
    """
    input_dtype = structure.input_dtype
    compute_dtype = _arguments.compute_dtype_of(input_dtype)

    def forward_pass(x, c):
        y, t = forward(ops.cast(x, compute_dtype), c, structure)
        return ops.cast(y, input_dtype), t

    def backward_pass(x, upstream, t, c):
        dx, dc = backward(ops.cast(x, compute_dtype),
                          ops.cast(upstream, compute_dtype), t, c, structure)
        return ops.cast(dx, input_dtype), dc

    if keras.backend.backend() == "tensorflow":
        forward_pass = _xla_compiled_on_tensorflow(forward_pass)
        backward_pass = _xla_compiled_on_tensorflow(backward_pass)
    elif keras.backend.backend() == "torch":
        backward_pass = _differentiable_on_torch(backward_pass, forward_pass)
    return forward_pass, backward_pass


@functools.lru_cache(maxsize=256)
def compiled_lrn(structure):
    """On JAX: LRN for one `Structure` as a `jax.jit`-compiled function
    `(x, c) -> y`, with `backward` as its `jax.custom_vjp`.

    An eager call is one dispatch of one compiled program (the forward
    alone, its window sum from shifted squares; `t` is kept only where a
    gradient is taken), where a `custom_gradient` around two compiled
    passes ran the wrapper op by op on every call (1.6x the jitted layer).
    Concrete arrays, which no JAX transformation differentiates, go to the
    forward compiled without the `custom_vjp` wrapper; a new input shape
    costs no more memory than a plain `jax.jit` of the formula (0.98x in
    benchmarks/memory_results.txt). Traced values (under `jax.grad`,
    `jit`, `vmap`) go through the `custom_vjp`, inlined into an outer
    `jit`. The cotangent of `c` carries the learned parameters' gradients
    (0 for fixed ones).
    """
    import jax

    forward_pass, backward_pass = compiled_pass.__wrapped__(structure)
    input_dtype = structure.input_dtype
    compute_dtype = _arguments.compute_dtype_of(input_dtype)

    def forward_only(x, c):
        y, _ = forward(ops.cast(x, compute_dtype), c, structure, shifted=True)
        return ops.cast(y, input_dtype)

    normalized = jax.custom_vjp(forward_only)

    def normalized_forward(x, c):
        y, t = forward_pass(x, c)
        return y, (x, t, c)

    def normalized_backward(residuals, upstream):
        x, t, c = residuals
        return backward_pass(x, upstream, t, c)

    normalized.defvjp(normalized_forward, normalized_backward)
    differentiable = jax.jit(normalized)
    concrete = jax.jit(forward_only)

    def call(x, c):
        if isinstance(x, jax.core.Tracer) or isinstance(c, jax.core.Tracer):
            return differentiable(x, c)
        return concrete(x, c)

    return call


@functools.lru_cache(maxsize=1024)
def _constant_coefficients(alpha, beta, bias, window_scale, compute_dtype):
    """`coefficients` of fixed parameters as a NumPy array, made once per
    value: on JAX an argument of the compiled function, not a new device
    tensor built on every call."""
    import numpy as np

    return np.asarray([alpha, bias, beta, 2.0 * alpha * beta,
                       1.0 if window_scale is None else window_scale],
                      dtype=compute_dtype)


def _xla_compiled_on_tensorflow(function):
    """`function`, XLA-compiled on TensorFlow whether called eagerly or
    traced into a graph.

    Eager calls go through `tf.function(jit_compile=True)`. Traced into a
    graph, the ops are written inline inside an XLA `jit_scope`: TensorFlow
    compiles them as one cluster when the graph runs (as fast as a nested
    compiled function), and the graph holds plain ops, which exporters
    (tf2onnx, for `model.export(format="onnx")`) convert, where they cannot
    convert a call to a compiled function. Inside an outer XLA function the
    ops are compiled with it. Every op is elementwise, a pad, a slice or a
    product with a constant-shaped kernel, so a NaN or Inf stays in its
    window also where TensorFlow runs them without XLA or constant-folds
    them.
    """
    import tensorflow as tf

    # a partial, not the function itself: TensorFlow counts traces per code
    # object to warn about retracing, and every structure's pass shares one
    compiled = tf.function(functools.partial(function), jit_compile=True,
                           reduce_retracing=True)

    def call(*args):
        if tf.executing_eagerly():
            return compiled(*args)
        with tf.xla.experimental.jit_scope(
                compile_ops=True, separate_compiled_gradients=False):
            return function(*args)

    return call


def _differentiable_on_torch(backward_pass, forward_pass):
    """Makes the backward differentiable on PyTorch, whose `custom_gradient`
    runs the forward without autograd: its `t` carries no graph. Where the
    backward is itself differentiated (`create_graph=True`, grad mode on
    inside the backward), `t` is recomputed from `x` with autograd."""
    import torch

    def differentiable_backward(x, upstream, t, c):
        if torch.is_grad_enabled():
            _, t = forward_pass(x, c)
        return backward_pass(x, upstream, t, c)

    return differentiable_backward


def lrn(x, window, alpha, beta, bias, window_scale=None, learned=()):
    """LRN in `keras.ops`, for any backend, rank, layout, dtype and window.

    Args:
        x: A float tensor (not empty).
        window: A `BoxWindow` or an `ExponentialWindow` for `x`.
        alpha, beta, bias, window_scale: Python numbers, or scalar tensors
            for the parameters named in `learned` (`window_scale` is `None`
            for a box).
        learned: The names of the parameters given as tensors whose
            gradients are wanted.

    Returns:
        `x / (bias + alpha * window_sum(x ** 2)) ** beta` in the dtype of
        `x`, with the hand-written gradient (`backward`).

    Per backend: on JAX one compiled function per structure
    (`compiled_lrn`); on PyTorch a fixed box window goes through
    `keras_lrn._torch_kernels` (in-place kernels eagerly, a fused formula
    under `torch.compile`, one ONNX `LRN` node where TorchScript exports
    it). While jax2onnx converts a call (`model.export(format="onnx")` on
    JAX), a fixed box window that ONNX's `LRN` computes becomes that one
    node (`keras_lrn._jax_export`).
    """
    backend = keras.backend.backend()
    fixed_box = not learned and isinstance(window, BoxWindow)
    if backend == "torch" and fixed_box:
        from keras_lrn import _torch_kernels

        return _torch_kernels.lrn(x, window.axes, window.before,
                                  window.after, alpha, beta, bias)
    structure = Structure.of(x, window, alpha, beta, learned)
    if backend == "jax":
        return _jax_lrn(x, structure, alpha, beta, bias, window_scale,
                        fixed_box)
    if backend == "torch":
        from keras_lrn import _torch_kernels

        if _torch_kernels.compiling():
            # Dynamo traces through caches with a warning: none here
            forward_pass, backward_pass = compiled_pass.__wrapped__(structure)
        else:
            forward_pass, backward_pass = compiled_pass(structure)
        if _torch_kernels.exporting():
            # TorchScript's exporter cannot trace a custom autograd
            # function around a Python callable: the forward alone
            c = coefficients(alpha, beta, bias, window_scale, x.dtype)
            return forward_pass(x, c)[0]
    else:
        forward_pass, backward_pass = compiled_pass(structure)
    c = coefficients(alpha, beta, bias, window_scale, x.dtype)

    @ops.custom_gradient
    def normalized(x, c):
        y, t = forward_pass(x, c)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return backward_pass(x, upstream, t, c)

        return y, grad

    return normalized(x, c)


def _jax_lrn(x, structure, alpha, beta, bias, window_scale, fixed_box):
    """`lrn` on JAX: one `LRN` node while jax2onnx converts a call that
    ONNX's operator computes, else the structure's compiled function."""
    from keras_lrn import _jax_export

    window = structure.window
    if fixed_box and _jax_export.converting():
        size = _jax_export.onnx_lrn_size(x.shape, x.dtype, window.axes,
                                         window.before, window.after)
        if size is not None:
            return _jax_export.lrn(x, size, alpha, beta, bias,
                                   channels_last=window.axes[0] == 3)
    compute_dtype = _arguments.compute_dtype_of(structure.input_dtype)
    if structure.learned:
        c = coefficients(alpha, beta, bias, window_scale, compute_dtype)
    else:
        c = _constant_coefficients(alpha, beta, bias, window_scale,
                                   compute_dtype)
    return compiled_lrn(structure)(x, c)


def native_lrn(x, window, alpha, beta, bias):
    """`tf.nn.local_response_normalization`, with a gradient of any order.

    TensorFlow's own gradient, `LRNGrad`, has no gradient itself
    (tensorflow/tensorflow#22825), so the backward pass is the portable one,
    with the denominator recomputed from `x`. Half-precision inputs are
    computed in float32. Fixed parameters and a box window only.
    """
    import tensorflow as tf

    input_dtype = keras.backend.standardize_dtype(x.dtype)
    structure = Structure.of(x, window, alpha, beta, ())
    forward_pass, backward_pass = compiled_pass(structure)
    c = coefficients(alpha, beta, bias, None, x.dtype)

    @tf.custom_gradient
    def normalized(x):
        y = tf.nn.local_response_normalization(
            tf.cast(x, tf.float32), depth_radius=window.before, bias=bias,
            alpha=alpha, beta=beta,
        )

        def grad(upstream):
            _, t = forward_pass(x, c)
            return backward_pass(x, upstream, t, c)[0]

        return tf.cast(y, input_dtype), grad

    return normalized(x)


def log_of(value):
    """The value a learned parameter's weight holds: its logarithm (`exp`
    inverts it, see `parameter_from_weight`)."""
    return math.log(value)


def parameter_from_weight(name, weight, dtype):
    """The parameter a learned weight holds, `exp(weight)`; the window's
    scale is kept at least `_arguments.smallest_window_scale(dtype)` so that
    training cannot drive it to where its weights underflow."""
    value = ops.exp(weight)
    if name == "window_scale":
        smallest = ops.convert_to_tensor(
            _arguments.smallest_window_scale(dtype),
            dtype=keras.backend.standardize_dtype(value.dtype))
        # `where`, not `maximum`: Keras's PyTorch `maximum` returned float32
        # for float64 operands
        value = ops.where(value > smallest, value, smallest)
    return value
