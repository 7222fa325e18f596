"""LRN of a fixed box window on the PyTorch backend, written in `torch`.

Three kernels compute the same function as the portable `keras.ops` passes
(`keras_lrn._compilation`), each a row of the dispatch's table
(`keras_lrn._dispatch`), which alone decides which runs:

- `in_place` (eager calls): a `torch.autograd.Function` whose forward and
  backward write as few full-size temporaries as the formula allows (the
  squares and their window sum, accumulated in place; the power in place)
  and whose backward reuses the forward's denominator `t` and its power
  `p = t ** beta` (saved beside `x` where a gradient is wanted). Every sum is
  a sum of the window's elements (no running-sum difference, which loses
  float32 precision on long axes).
- `fused` (under `torch.compile`, Keras's `jit_compile=True`): the plain
  out-of-place formula and the same backward (`_FusedLRN`), which
  TorchInductor fuses; no Python-side cache is consulted there, so Dynamo
  traces it without warnings or graph breaks.
- `onnx_node` and `formula` (inside `torch.onnx.export`'s TorchScript
  trace): one ONNX `LRN` node, or the plain formula where ONNX's operator
  cannot compute the layer.

The power of the denominator is `keras_lrn._formula.beta_power`, the one
power table, here over `torch` primitives (`TORCH`, and `TORCH_IN_PLACE`
for the in-place kernels).
"""

import contextlib
import warnings

import torch

from keras_lrn import _formula
from keras_lrn import conventions

__all__ = ["formula", "fused", "in_place", "onnx_node", "quiet_tracer"]

# Up to this window length a window sum adds shifted slices in place (one
# temporary); longer windows sum doubling widths (log2(size) temporaries,
# fewer passes over memory).
IN_PLACE_MAX_SIZE = 8

TORCH = _formula.Primitives(
    sqrt=torch.sqrt, multiply=torch.mul, power=torch.pow, exp=torch.exp,
    log=torch.log, ones_like=torch.ones_like)
TORCH_IN_PLACE = _formula.Primitives(
    sqrt=torch.Tensor.sqrt_, multiply=torch.Tensor.mul_,
    power=torch.Tensor.pow_, exp=torch.Tensor.exp_, log=torch.Tensor.log_,
    ones_like=lambda t: t.fill_(1.0), in_place=True)


def _compute_dtype(dtype):
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@contextlib.contextmanager
def quiet_tracer():
    """Ignores TorchScript's warnings about shapes read as Python numbers
    while tracing (they are constants of the exported graph on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


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
    `p = t ** beta` for the backward (else both are overwritten)."""
    t, squares = _denominator(x, axes, before, after, alpha, bias)
    path = _formula.beta_path_of(beta)
    if not keep:
        del squares
        p = _formula.beta_power(t, path, beta, TORCH_IN_PLACE)
        return torch.div(x, p, out=p), None, None
    # the squares' memory
    p = _formula.beta_power(squares.copy_(t), path, beta, TORCH_IN_PLACE)
    return x / p, t, p


def _backward(x, upstream, t, p, axes, before, after, alpha, beta):
    """dx from the forward's `t` and `p = t ** beta`, as
    `keras_lrn._formula.backward`: `q - 2 alpha beta x W^T(q x / t)` with
    `q = upstream / p` (the transposed window swaps before and after)."""
    if alpha == 0 or beta == 0:
        return upstream / p
    # q is never stored: the window sums upstream * x / p / t, and q joins
    # the result in the last pass (one full-size tensor fewer)
    u = upstream * x
    u.div_(p).div_(t)
    correction = window_sum(u, axes, after, before)
    del u
    correction.mul_(x).mul_(-2.0 * alpha * beta)
    return correction.addcdiv_(upstream, p)


def _formula_denominator(x, axes, before, after, alpha, bias):
    if alpha == 0:
        return torch.full_like(x, bias)
    total = x * x
    for axis in axes:
        total = _padded_slices_sum(total, axis, before, after)
    return bias + alpha * total


def _plain_formula(x, axes, before, after, alpha, beta, bias):
    """The out-of-place formula in the compute dtype, for autodiff of any
    order and exporters."""
    t = _formula_denominator(x, axes, before, after, alpha, bias)
    return x / _formula.beta_power(t, _formula.beta_path_of(beta), beta,
                                   TORCH)


def _differentiated_again(x, upstream, axes, before, after, alpha, beta,
                          bias):
    """dx by autodiff of the out-of-place formula, whose graph holds `x`:
    for a backward that is itself differentiated (`create_graph=True`)."""
    compute = _compute_dtype(x.dtype)
    with torch.enable_grad():
        y = _plain_formula(x.to(compute), axes, before, after, alpha, beta,
                           bias)
        (dx,) = torch.autograd.grad(y, x, upstream.to(compute),
                                    create_graph=True)
    return dx.to(x.dtype)


class _FusedLRN(torch.autograd.Function):
    """LRN for `torch.compile`: out-of-place forward and the hand-written
    backward from the forward's `t`, which TorchInductor fuses (autodiff
    of the formula differentiates the power again)."""

    @staticmethod
    def forward(ctx, x, axes, before, after, alpha, beta, bias):
        xc = x.to(_compute_dtype(x.dtype))
        t = _formula_denominator(xc, axes, before, after, alpha, bias)
        ctx.save_for_backward(x, t)
        ctx.arguments = (axes, before, after, alpha, beta, bias)
        path = _formula.beta_path_of(beta)
        return (xc / _formula.beta_power(t, path, beta, TORCH)).to(x.dtype)

    @staticmethod
    def backward(ctx, upstream):
        x, t = ctx.saved_tensors
        axes, before, after, alpha, beta, bias = ctx.arguments
        if torch.is_grad_enabled():
            return (_differentiated_again(x, upstream, *ctx.arguments),
                    ) + (None,) * 6
        compute = _compute_dtype(x.dtype)
        xc, g = x.to(compute), upstream.to(compute)
        q = g / _formula.beta_power(t, _formula.beta_path_of(beta), beta,
                                    TORCH)
        dx = q
        if alpha != 0 and beta != 0:
            u = q * xc / t
            for axis in axes:  # the transposed window
                u = _padded_slices_sum(u, axis, after, before)
            dx = q - (2.0 * alpha * beta) * xc * u
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
    """LRN with a hand-written backward that reuses the forward's `t` and
    `p`; `symbolic` writes one ONNX `LRN` node for TorchScript's export."""

    @staticmethod
    def forward(ctx, x, axes, before, after, alpha, beta, bias,
                onnx_attributes, channels_last):
        xc = x.to(_compute_dtype(x.dtype))
        keep = ctx.needs_input_grad[0]
        y, t, p = _forward(xc, axes, before, after, alpha, beta, bias, keep)
        if keep:
            ctx.save_for_backward(x, t, p)
        ctx.arguments = (axes, before, after, alpha, beta, bias)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, upstream):
        x, t, p = ctx.saved_tensors
        axes, before, after, alpha, beta, bias = ctx.arguments
        if torch.is_grad_enabled():
            return (_differentiated_again(x, upstream, *ctx.arguments),
                    ) + (None,) * 8
        compute = _compute_dtype(x.dtype)
        dx = _backward(x.to(compute), upstream.to(compute), t, p, axes,
                       before, after, alpha, beta)
        return (dx.to(x.dtype),) + (None,) * 8

    @staticmethod
    def symbolic(g, x, axes, before, after, alpha, beta, bias,
                 onnx_attributes, channels_last):
        """One ONNX `LRN` node."""
        if channels_last:
            x = g.op("Transpose", x, perm_i=[0, 3, 1, 2])
        y = g.op("LRN", x, **onnx_attributes)
        if channels_last:
            y = g.op("Transpose", y, perm_i=[0, 2, 3, 1])
        return y


def in_place(x, window, alpha, beta, bias, window_scale=None, learned=()):
    """The eager kernel of a fixed box window (see the module)."""
    return _LRN.apply(x, window.axes, window.before, window.after, alpha,
                      beta, bias, None, False)


def fused(x, window, alpha, beta, bias, window_scale=None, learned=()):
    """The kernel under `torch.compile` (see the module)."""
    return _FusedLRN.apply(x, window.axes, window.before, window.after,
                           alpha, beta, bias)


def onnx_node(x, window, alpha, beta, bias, window_scale=None, learned=()):
    """One ONNX `LRN` node in TorchScript's export, for a window that ONNX's
    operator computes (4-D float32 input, across the channels of axis 1 or
    3, an odd window); its attributes from `CONVENTIONS["onnx"]`."""
    size = window.before + window.after + 1
    arguments = conventions.from_canonical(
        conventions.CONVENTIONS["onnx"], size, alpha, beta, bias,
        "across_channels", "after")
    attributes = {"size_i": arguments["size"],
                  "alpha_f": arguments["alpha"], "beta_f": arguments["beta"],
                  "bias_f": arguments["bias"]}
    # the trace records `symbolic`'s node; the forward still runs, on
    # traced shapes, which the tracer would warn about
    with quiet_tracer():
        return _LRN.apply(x, window.axes, window.before, window.after,
                          alpha, beta, bias, attributes,
                          window.axes[0] == 3)


def formula(x, window, alpha, beta, bias, window_scale=None, learned=()):
    """The plain formula in TorchScript's export, where ONNX's operator
    cannot compute the layer."""
    compute = _compute_dtype(x.dtype)
    return _plain_formula(x.to(compute), window.axes, window.before,
                          window.after, alpha, beta, bias).to(x.dtype)
