"""The windows LRN sums over: a box of `size` neighbours (`BoxWindow`) and,
across channels, an exponentially decaying window (`ExponentialWindow`).

Each window sums a tensor over the window of every element, with zeros
outside the input, in `keras.ops`, and gives its transpose (the window of the
backward's adjoint sum). Nothing here depends on the backend: where a
backend needs another form of a sum (the exponential window's product on
PyTorch), the dispatch (`keras_lrn._dispatch`) chooses it as a field of the
window.
"""

import dataclasses

from keras import ops

__all__ = ["BoxWindow", "ExponentialWindow", "LARGEST_UNCLAMPED_SIZE",
           "SHIFTED_MAX_SIZE", "box_sum_of_shifts"]

# The widest box window that is not clamped to the input when an axis it
# spans has no static length (a traced graph with unknown spatial
# dimensions).
LARGEST_UNCLAMPED_SIZE = 255
# Up to this many channels the exponential window sum is a matrix product
# with the C x C kernel; above, two doubling scans along the channel axis.
# The crossover was measured under XLA on the CPU, TensorFlow and JAX
# (benchmarks/learned_bench.py, benchmarks/learned_results.md): the scans'
# fewer operations are separate memory-bound passes, and the product stays
# the faster up to about 4096 channels, where the kernel alone holds 64 MiB.
MATRIX_PRODUCT_MAX_CHANNELS = 2048
# The longest box window along one axis whose sum JAX's forward takes from
# shifted copies of the squares (`box_sum_of_shifts`).
SHIFTED_MAX_SIZE = 8


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
    the XLA cluster of a plain `tf.function` in two (benchmarks/RESULTS.md,
    "Every backend").
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


def box_sum_of_shifts(values, axis, before, after):
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
        product: How "matrix" multiplies: "matmul", or "einsum" where a
            backend's `matmul` does not keep the operands' dtype (Keras's
            PyTorch `matmul` returned float32 for float64 operands;
            TensorFlow's einsum with an ellipsis is the slower form under
            XLA). The dispatch chooses it per backend.
    """

    axis: int
    channels: int
    method: str
    product: str = "matmul"

    @classmethod
    def of(cls, shape, data_format, method="auto", product="matmul"):
        """The window for an input of `shape`; "auto" takes the product up
        to `MATRIX_PRODUCT_MAX_CHANNELS` channels and the scans above."""
        axis, _ = _channel_and_spatial_axes(len(shape), data_format)
        channels = shape[axis]
        if method == "auto":
            method = ("matrix" if channels <= MATRIX_PRODUCT_MAX_CHANNELS
                      else "scan")
        return cls(axis, channels, method, product)

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
        # start and stop both given: jax2onnx's `jnp.arange`, which replaces
        # JAX's while it converts, reads Keras's `arange(stop)` call
        # (`jnp.arange(stop, None)`) as a stop of None
        positions = ops.arange(0, self.channels, dtype=values.dtype)
        return ops.abs(positions[:, None] - positions[None, :])

    def _kernel(self, values, scale):
        # exp(-d / scale) is exactly 1 at d = 0 and underflows to 0 far away:
        # never 0 * log(0)
        return ops.exp(-self._distances(values) / scale)

    def _matrix_product(self, values, kernel):
        last = len(values.shape) - 1
        if self.axis != last:
            values = ops.moveaxis(values, self.axis, last)
        if self.product == "einsum":
            total = ops.einsum("...c,cd->...d", values, kernel)
        else:
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


