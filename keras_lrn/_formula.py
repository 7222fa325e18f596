"""LRN's formula, written once: the power table, the forward and the backward.

```
t = bias + alpha * window_sum(x ** 2)        y = x / t ** beta
```

`beta_power` is the one table of beta's special cases; every path divides by
what it returns, forward and backward, on every backend: the portable
`keras.ops` passes here (on JAX with `jax.lax.pow` for the power,
`keras_lrn._compilation`), PyTorch's own kernels (`keras_lrn._torch_kernels`)
and the formula of JAX's ONNX node (`keras_lrn._jax_export`), each through
its own `Primitives`. alpha, bias, beta and the exponential window's scale
reach the passes as one runtime tensor of coefficients (`coefficients`),
whether constants or a layer's learned weights, so compiled programs are
keyed by `Structure`, not by values.
"""

import dataclasses
import functools

import keras
from keras import ops

from keras_lrn import _arguments
from keras_lrn import _windows

__all__ = ["BETA_PATHS", "KERAS_PRIMITIVES", "Primitives", "Structure",
           "backward", "beta_path_of", "beta_power", "coefficients",
           "constant_coefficients", "forward", "totals_by_row_products"]

# Betas with a power of their own in `beta_power`; other fixed betas, and
# learned ones, are a runtime value of one general path.
BETA_PATHS = (0.0, 0.5, 0.75, 1.0)
# The runtime coefficients, in the order of the tensor `coefficients` makes.
ALPHA, BIAS, BETA, GRADIENT_FACTOR, WINDOW_SCALE = range(5)
COEFFICIENT_OF = {"alpha": ALPHA, "bias": BIAS, "beta": BETA,
                  "window_scale": WINDOW_SCALE}


@dataclasses.dataclass(frozen=True)
class Primitives:
    """The operations `beta_power` is written in, for one array library.

    With `in_place`, `sqrt`, `power`, `exp` and `multiply` write their
    result into their first argument (PyTorch's eager kernels): each
    operation is then a pass over memory of its own, where XLA and
    TorchInductor fuse a chain of them into one. `totals` sums each of a
    list of tensors of one shape over all its elements (the backward's
    parameter gradients), as a sequence.
    """

    sqrt: object
    multiply: object
    power: object
    exp: object
    log: object
    ones_like: object
    in_place: bool = False
    totals: object = staticmethod(lambda terms: [ops.sum(term)
                                                 for term in terms])


def totals_by_row_products(terms):
    """`Primitives.totals` as products: each tensor's rows (its last axis)
    summed by a matrix-vector product with ones, then the row sums. Under
    XLA on the CPU each product fuses with the elementwise term it sums
    into one vectorized loop, where a reduction of the term over all or
    some of its axes runs slower (TensorFlow's compiled passes use it;
    benchmarks/learned_results.md)."""
    totals = []
    for term in terms:
        length = term.shape[-1]
        if length is None:
            length = ops.shape(term)[-1]
        rows = ops.reshape(term, (-1, length))
        totals.append(ops.sum(ops.matmul(
            rows, ops.ones((length,), dtype=term.dtype))))
    return totals


KERAS_PRIMITIVES = Primitives(
    sqrt=ops.sqrt, multiply=ops.multiply, power=ops.power, exp=ops.exp,
    log=ops.log, ones_like=ops.ones_like)


def beta_power(t, path, beta, primitives=KERAS_PRIMITIVES, log_t=None):
    """`t ** beta` for t > 0: the one power table.

    `path` is beta itself where it is one of `BETA_PATHS` (known when the
    function is traced), "learned" for a learned beta, or `None` for the
    general path, which raises `t` to the runtime value `beta`. The common
    betas are square roots, which are correctly rounded on every backend
    and fuse under XLA, where `pow` and `exp(beta * log(t))` are
    transcendental; a learned beta is `exp(beta * log(t))`, whose `log(t)`
    the beta gradient shares (`log_t`, where already computed). With
    in-place primitives (`Primitives.in_place`), beta 0.75 is one `power`
    pass: the two roots and their product would be three passes and a
    copy of the first root. Callers divide by the result: a division by a
    square root keeps XLA's CPU `rsqrt` out of every path, and a `t` that
    overflowed to infinity gives 0.
    """
    p = primitives
    if path == 0:
        return p.ones_like(t)
    if path == 0.5:
        return p.sqrt(t)
    if path == 0.75:
        if p.in_place:
            return p.power(t, beta)
        root = p.sqrt(t)
        return p.multiply(root, p.sqrt(root))
    if path == 1:
        return t
    if path == "learned":
        return p.exp(p.multiply(p.log(t) if log_t is None else log_t, beta))
    return p.power(t, beta)


def beta_path_of(beta, learned=()):
    """The `path` of `beta_power` for a beta (a number, or a tensor where
    "beta" is in `learned`)."""
    if "beta" in learned:
        return "learned"
    return beta if beta in BETA_PATHS else None


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
        beta_path: beta where it is fixed and one of `BETA_PATHS`,
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
        return cls(
            window=window,
            input_dtype=keras.backend.standardize_dtype(x.dtype),
            rank=len(x.shape),
            beta_path=beta_path_of(beta, learned),
            alpha_is_zero="alpha" not in learned and alpha == 0,
            learned=tuple(learned),
        )

    @property
    def keeps_window_sum(self):
        """Whether the forward's residual is the window sum `S` rather than
        `t`: with learned parameters the alpha gradient needs `S`, and `t`
        is one elementwise step from it."""
        return bool(self.learned) and not self.alpha_is_zero


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
        return ops.convert_to_tensor(constant_coefficients(
            alpha, beta, bias, window_scale, compute_dtype))
    alpha, bias, beta, _, window_scale = (
        None if value is None else ops.cast(value, compute_dtype)
        if not isinstance(value, (int, float))
        else ops.convert_to_tensor(value, dtype=compute_dtype)
        for value in values
    )
    return ops.stack([alpha, bias, beta, 2.0 * alpha * beta, window_scale])


@functools.lru_cache(maxsize=1024)
def constant_coefficients(alpha, beta, bias, window_scale, compute_dtype):
    """`coefficients` of fixed parameters as a NumPy array, made once per
    value: on JAX an argument of the compiled function, not a new device
    tensor built on every call."""
    import numpy as np

    return np.asarray([alpha, bias, beta, 2.0 * alpha * beta,
                       1.0 if window_scale is None else window_scale],
                      dtype=compute_dtype)


def forward(x, c, structure, shifted=False, primitives=KERAS_PRIMITIVES):
    """Returns (y, residual) in the compute dtype: `t = bias + alpha *
    S`, `S = window_sum(x^2)`, `y = x / beta_power(t)`, and what the
    backward needs of the forward: `S` where the structure learns
    parameters (`Structure.keeps_window_sum`), else `t`. With `shifted`, a
    short box window along one axis sums shifted copies of the squares
    (`keras_lrn._windows.box_sum_of_shifts`). `primitives` are those of
    `beta_power`."""
    window = structure.window
    if structure.alpha_is_zero:
        t = ops.zeros_like(x) + c[BIAS]
        total = None
    else:
        if (shifted and isinstance(window, _windows.BoxWindow)
                and len(window.axes) == 1
                and window.before + window.after < _windows.SHIFTED_MAX_SIZE):
            total = _windows.box_sum_of_shifts(
                ops.square(x), window.axes[0], window.before, window.after)
        else:
            total = window.sum(ops.square(x), c[WINDOW_SCALE])
        t = c[BIAS] + c[ALPHA] * total
    y = x / beta_power(t, structure.beta_path, c[BETA], primitives)
    return y, total if structure.keeps_window_sum else t


def backward(x, upstream, residual, c, structure,
             primitives=KERAS_PRIMITIVES):
    """The vector-Jacobian product of LRN, from the forward's residual.

    With `p = t ** beta` (`beta_power`), `q = upstream / p`,
    `S = window_sum(x ** 2)` and `u = q * x / t`:

    ```
    dx_j = q_j - 2 alpha beta x_j * sum_{i: j in window(i)} u_i
    dalpha = -beta * sum(u * S)        dbias = -beta * sum(u)
    dbeta = -sum(q * x * log(t))
    dscale = -alpha * beta * sum(u * dS/dscale)
    ```

    Parameter gradients are computed only for `structure.learned` (0 for
    the others); `p` is recomputed from the residual elementwise (by
    `beta_power` in `primitives`), which costs less than storing it. Built
    from differentiable ops, so gradients of any order with respect to `x`
    follow.

    Returns:
        `(dx, dc)`: the gradients with respect to `x` and to the
        coefficients tensor `c`.
    """
    window = structure.window
    if structure.keeps_window_sum:
        total = residual
        t = c[BIAS] + c[ALPHA] * total
    else:
        t = residual
    log_t = ops.log(t) if structure.beta_path == "learned" else None
    q = upstream / beta_power(t, structure.beta_path, c[BETA], primitives,
                              log_t=log_t)
    if structure.alpha_is_zero:
        dx = q
        u = q * x / t if structure.learned else None
    else:
        u = q * x / t
        dx = q - c[GRADIENT_FACTOR] * x * window.transposed().sum(
            u, c[WINDOW_SCALE])
    terms = {
        "alpha": lambda: u * total,
        "bias": lambda: u,
        "beta": lambda: q * x * (ops.log(t) if log_t is None else log_t),
        "window_scale": lambda: u * window.scale_derivative_sum(
            ops.square(x), c[WINDOW_SCALE]),
    }
    factors = {"alpha": -c[BETA], "bias": -c[BETA], "beta": -1.0,
               "window_scale": -c[ALPHA] * c[BETA]}
    gradients = [ops.zeros((), dtype=c.dtype)] * 5
    if structure.learned:
        totals = primitives.totals(
            [terms[name]() for name in structure.learned])
        for name, total_of_term in zip(structure.learned, totals):
            gradients[COEFFICIENT_OF[name]] = ops.cast(
                factors[name] * total_of_term, c.dtype)
    return dx, ops.stack(gradients)
