"""LRN on the PyTorch backend, written in `torch` directly.

Three paths compute the same function as the portable `keras.ops` one:

- eager (`lrn`): a `torch.autograd.Function` whose forward and backward
  write as few full-size temporaries as the formula allows (the squares and
  their window sum, accumulated in place; the power in place) and whose
  backward reuses the forward's denominator `t` and `s = t ** -beta`
  (saved beside `x` where a gradient is wanted: one tensor more than the
  portable path keeps, for no second power). Every sum is a sum of the
  window's elements (no running-sum difference, which loses float32
  precision on long axes).
- compiled (under `torch.compile`, Keras's `jit_compile=True`): the plain
  out-of-place formula and the same backward (`_CompiledLRN`), which
  TorchInductor fuses; no Python-side cache is consulted there, so Dynamo
  traces it without warnings or graph breaks.
- exported (inside `torch.onnx.export`'s TorchScript trace): the same
  `torch.autograd.Function`, whose `symbolic` writes one ONNX `LRN` node
  where onnxruntime's `LRN` computes the layer (4-D float32 input, across
  channels, an odd window), and the plain formula otherwise.

The window is given as `(axes, before, after)`: the axes it spans and how
many elements it holds before and after each element's own.
"""

import contextlib
import warnings

import torch

# Up to this window length a window sum adds shifted slices in place (one
# temporary); longer windows sum doubling widths (log2(size) temporaries,
# fewer passes over memory).
IN_PLACE_MAX_SIZE = 8


def _compute_dtype(dtype):
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def exporting():
    """Whether TorchScript traces the call (`torch.onnx.export`)."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


@contextlib.contextmanager
def quiet_tracer():
    """Ignores TorchScript's warnings about shapes read as Python numbers
    while tracing (they are constants of the exported graph on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def compiling():
    """Whether Dynamo traces the call (`torch.compile`, `torch.export`)."""
    return torch.compiler.is_compiling()


def _sum_along_axis(values, axis, before, after):
    """`out[i] = sum(values[i - before : i + after + 1])` along `axis`, zeros
    outside; a new tensor."""
    size = before + after + 1
    length = values.shape[axis]
    if size == 1:
        return values.clone()
    if size <= IN_PLACE_MAX_SIZE:
        total = values.clone()
        for shift in range(1, min(before, length - 1) + 1):
            total.narrow(axis, shift, length - shift).add_(
                values.narrow(axis, 0, length - shift))
        for shift in range(1, min(after, length - 1) + 1):
            total.narrow(axis, 0, length - shift).add_(
                values.narrow(axis, shift, length - shift))
        return total
    return _doubling_sum(values, axis, before, after)


def _doubling_sum(values, axis, before, after):
    """The window sum from sums of doubling widths (1, 2, 4, ...) of the
    zero-padded values: log2(size) + popcount(size) additions."""
    size = before + after + 1
    pad = [0, 0] * (values.dim() - 1 - axis % values.dim()) + [before, after]
    padded = torch.nn.functional.pad(values, pad)
    full = padded.shape[axis]
    widths = {1: padded}
    width = 1
    while 2 * width <= size:
        previous = widths[width]
        n = full - 2 * width + 1
        widths[2 * width] = torch.add(previous.narrow(axis, 0, n),
                                      previous.narrow(axis, width, n))
        width *= 2
    length = full - size + 1
    total = None
    offset = 0
    for width in sorted(widths, reverse=True):
        if (size - offset) & width:
            term = widths[width].narrow(axis, offset, length)
            if total is None:
                total = term.clone()
            else:
                total.add_(term)
            offset += width
    return total


def window_sum(values, axes, before, after):
    """The sum of `values` over the window of each element (a new tensor)."""
    for axis in axes:
        values = _sum_along_axis(values, axis, before, after)
    return values


def _inverse_power_(t, beta):
    """`t ** -beta`, written into `t` (t > 0)."""
    if beta == 0:
        return t.fill_(1.0)
    if beta == 0.5:
        return t.rsqrt_()
    if beta == 1:
        return t.reciprocal_()
    return t.pow_(-beta)


def _denominator(x, axes, before, after, alpha, bias):
    """`(t, squares)`: `t = bias + alpha * W(x^2)` and the tensor of squares
    (free for reuse). Across one axis with a short window `t` is
    accumulated in place from shifted views of the squares (`add_` with
    alpha): besides the squares, one new tensor. The squares are computed
    first, as on every backend: where they overflow, `t` is infinite and
    the output 0."""
    squares = x * x
    if alpha == 0:
        return torch.full_like(x, bias), squares
    size = before + after + 1
    if len(axes) > 1 or size > IN_PLACE_MAX_SIZE:
        t = window_sum(squares, axes, before, after)
        return t.mul_(alpha).add_(bias), squares
    (axis,) = axes
    length = x.shape[axis]
    t = torch.add(torch.tensor(bias, dtype=x.dtype, device=x.device),
                  squares, alpha=alpha)
    for shift in range(1, min(before, length - 1) + 1):
        t.narrow(axis, shift, length - shift).add_(
            squares.narrow(axis, 0, length - shift), alpha=alpha)
    for shift in range(1, min(after, length - 1) + 1):
        t.narrow(axis, 0, length - shift).add_(
            squares.narrow(axis, shift, length - shift), alpha=alpha)
    return t, squares


def _forward(x, axes, before, after, alpha, beta, bias, keep):
    """y for `x` in its compute dtype; with `keep`, also `t` and
    `s = t ** -beta` for the backward (else both are overwritten)."""
    t, squares = _denominator(x, axes, before, after, alpha, bias)
    if not keep:
        del squares
        return _inverse_power_(t, beta).mul_(x), None, None
    s = _inverse_power_(squares.copy_(t), beta)  # the squares' memory
    return x * s, t, s


def _backward(x, upstream, t, s, axes, before, after, alpha, beta):
    """dx from the forward's `t` and `s = t ** -beta`:
    `g * s - 2 alpha beta x W^T(g x s / t)` (the transposed window swaps
    before and after)."""
    if alpha == 0 or beta == 0:
        return upstream * s
    u = upstream * x
    u.mul_(s).div_(t)
    correction = window_sum(u, axes, after, before)
    del u
    correction.mul_(x).mul_(-2.0 * alpha * beta)
    return correction.addcmul_(upstream, s)


def formula(x, axes, before, after, alpha, beta, bias):
    """The out-of-place formula in the compute dtype, for autodiff of any
    order and exporters: squares, a zero-padded window sum of shifted
    slices, the power."""
    return x * _inverse_power(_formula_denominator(
        x, axes, before, after, alpha, bias), beta)


def _formula_denominator(x, axes, before, after, alpha, bias):
    if alpha == 0:
        return torch.full_like(x, bias)
    total = x * x
    for axis in axes:
        total = _padded_slices_sum(total, axis, before, after)
    return bias + alpha * total


def _inverse_power(t, beta):
    """`t ** -beta`, out of place. AlexNet's beta 0.75 is `rsqrt(t) *
    sqrt(rsqrt(t))`: under `torch.compile` TorchInductor recomputes the
    power wherever the backward's window reads it, and `pow` there made
    forward+backward 2x slower (benchmarks/backends_bench.py)."""
    if beta == 0:
        return torch.ones_like(t)
    if beta == 0.5:
        return torch.rsqrt(t)
    if beta == 0.75:
        root = torch.rsqrt(t)
        return root * torch.sqrt(root)
    if beta == 1:
        return 1.0 / t
    return torch.pow(t, -beta)


class _CompiledLRN(torch.autograd.Function):
    """LRN for `torch.compile`: out-of-place forward and the hand-written
    backward from the forward's `t`, which TorchInductor fuses (autodiff
    of the formula differentiates the power again: 2-3x slower)."""

    @staticmethod
    def forward(ctx, x, axes, before, after, alpha, beta, bias):
        compute = _compute_dtype(x.dtype)
        xc = x.to(compute)
        t = _formula_denominator(xc, axes, before, after, alpha, bias)
        ctx.save_for_backward(x, t)
        ctx.arguments = (axes, before, after, alpha, beta, bias)
        return (xc * _inverse_power(t, beta)).to(x.dtype)

    @staticmethod
    def backward(ctx, upstream):
        x, t = ctx.saved_tensors
        axes, before, after, alpha, beta, bias = ctx.arguments
        compute = _compute_dtype(x.dtype)
        xc, g = x.to(compute), upstream.to(compute)
        if torch.is_grad_enabled():
            # differentiated again: autodiff of the formula, from x
            with torch.enable_grad():
                y = formula(xc, axes, before, after, alpha, beta, bias)
                (dx,) = torch.autograd.grad(y, x, g, create_graph=True)
            return (dx.to(x.dtype),) + (None,) * 6
        s = _inverse_power(t, beta)
        dx = g * s
        if alpha != 0 and beta != 0:
            u = g * xc * s / t
            for axis in axes:  # the transposed window
                u = _padded_slices_sum(u, axis, after, before)
            dx = dx - (2.0 * alpha * beta) * xc * u
        return (dx.to(x.dtype),) + (None,) * 6


def _padded_slices_sum(values, axis, before, after):
    size = before + after + 1
    if size == 1:
        return values
    length = values.shape[axis]
    pad = [0, 0] * (values.dim() - 1 - axis) + [before, after]
    padded = torch.nn.functional.pad(values, pad)
    total = padded.narrow(axis, 0, length)
    for offset in range(1, size):
        total = total + padded.narrow(axis, offset, length)
    return total


class _LRN(torch.autograd.Function):
    """LRN with a hand-written backward that reuses the forward's `t`."""

    @staticmethod
    def forward(ctx, x, axes, before, after, alpha, beta, bias, onnx_size,
                channels_last):
        compute = _compute_dtype(x.dtype)
        xc = x.to(compute)
        keep = ctx.needs_input_grad[0]
        y, t, s = _forward(xc, axes, before, after, alpha, beta, bias, keep)
        if keep:
            ctx.save_for_backward(x, t, s)
        ctx.window = (axes, before, after)
        ctx.coefficients = (alpha, beta, bias)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, upstream):
        x, t, s = ctx.saved_tensors
        axes, before, after = ctx.window
        alpha, beta, bias = ctx.coefficients
        compute = _compute_dtype(x.dtype)
        if torch.is_grad_enabled():
            # differentiated again (create_graph=True): autodiff of the
            # out-of-place formula, whose graph holds x
            with torch.enable_grad():
                xc = x.to(compute)
                y = formula(xc, axes, before, after, alpha, beta, bias)
                (dx,) = torch.autograd.grad(
                    y, x, upstream.to(compute), create_graph=True)
            return (dx.to(x.dtype),) + (None,) * 8
        dx = _backward(x.to(compute), upstream.to(compute), t, s, axes,
                       before, after, alpha, beta)
        return (dx.to(x.dtype),) + (None,) * 8

    @staticmethod
    def symbolic(g, x, axes, before, after, alpha, beta, bias, onnx_size,
                 channels_last):
        """One ONNX `LRN` node (ONNX divides alpha by its size)."""
        if channels_last:
            x = g.op("Transpose", x, perm_i=[0, 3, 1, 2])
        y = g.op("LRN", x, alpha_f=alpha * onnx_size, beta_f=beta,
                 bias_f=bias, size_i=onnx_size)
        if channels_last:
            y = g.op("Transpose", y, perm_i=[0, 2, 3, 1])
        return y


def onnx_lrn_size(x, axes, before, after):
    """The `size` of ONNX's `LRN` computing this window on `x`, or None
    where that operator cannot: it sums across the channels of 4-D float32
    input. ONNX defines even sizes too (the extra element after the
    centre), but onnxruntime's kernel refuses them (`size_ % 2 == 1`), so
    only odd windows become an `LRN` node."""
    if (x.dim() != 4 or x.dtype != torch.float32 or len(axes) != 1
            or axes[0] not in (1, 3) or after != before):
        return None
    return before + after + 1


def lrn(x, axes, before, after, alpha, beta, bias):
    """LRN of a torch tensor: `y = x * (bias + alpha * W(x^2)) ** -beta`,
    `axes`, `before` and `after` giving the window. (On 4-D input a window
    over axis 1 or 3 alone is across channels: ONNX's operator.)"""
    axes = tuple(a % x.dim() for a in axes)
    if compiling():
        return _CompiledLRN.apply(x, axes, before, after, alpha, beta, bias)
    if exporting():
        onnx_size = onnx_lrn_size(x, axes, before, after)
        if onnx_size is None:
            compute = _compute_dtype(x.dtype)
            return formula(x.to(compute), axes, before, after, alpha, beta,
                           bias).to(x.dtype)
        # the trace records `symbolic`'s node; the forward still runs, on
        # traced shapes, which the tracer would warn about
        with quiet_tracer():
            return _LRN.apply(x, axes, before, after, alpha, beta, bias,
                              onnx_size, axes[0] == 3)
    return _LRN.apply(x, axes, before, after, alpha, beta, bias, 0, False)
