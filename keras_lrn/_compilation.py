"""The portable passes (`keras_lrn._formula` in `keras.ops`), compiled for
each backend and context, and the kernels that run them.

A kernel takes `(x, window, alpha, beta, bias, window_scale, learned)`:
the input, its `Window`, and the parameters, Python numbers or, for the
names in `learned`, scalar tensors. Which kernel runs a call, and so which
compilation, is chosen by `keras_lrn._dispatch` alone; nothing here asks
which backend or context it runs in.

The passes take the runtime coefficients (`_formula.coefficients`) beside
the tensors, so a new alpha or bias compiles nothing, and half-precision
inputs are computed in float32 and rounded once.
"""

import dataclasses
import functools

from keras import ops

from keras_lrn import _arguments
from keras_lrn import _formula

__all__ = ["jax_concrete", "jax_traced", "portable", "portable_forward_only",
           "tensorflow_eager", "tensorflow_graph", "tensorflow_native",
           "tensorflow_native_eager", "torch_compiled", "torch_eager"]


def _passes(structure, shifted=False, primitives=_formula.KERAS_PRIMITIVES):
    """`(forward_pass, backward_pass)` of one `Structure`, uncompiled:
    `forward_pass(x, c) -> (y, residual)` and `backward_pass(x, upstream,
    residual, c) -> (dx, dc)`, in the input's dtype, written in
    `primitives` (the power of `_formula.beta_power`, the backward's
    parameter totals)."""
    input_dtype = structure.input_dtype
    compute_dtype = _arguments.compute_dtype_of(input_dtype)

    def forward_pass(x, c):
        y, residual = _formula.forward(ops.cast(x, compute_dtype), c,
                                       structure, shifted, primitives)
        return ops.cast(y, input_dtype), residual

    def backward_pass(x, upstream, residual, c):
        dx, dc = _formula.backward(
            ops.cast(x, compute_dtype), ops.cast(upstream, compute_dtype),
            residual, c, structure, primitives)
        return ops.cast(dx, input_dtype), dc

    return forward_pass, backward_pass


# TensorFlow's passes total the parameter gradients by matrix-vector
# products (`_formula.totals_by_row_products`).
TENSORFLOW_PRIMITIVES = dataclasses.replace(
    _formula.KERAS_PRIMITIVES, totals=_formula.totals_by_row_products)


@functools.lru_cache(maxsize=256)
def _xla_passes(structure):
    """The passes as `tf.function(jit_compile=True)`, for eager calls on
    TensorFlow: XLA fuses the window sum and the power into one pass over
    memory, where TensorFlow's executor runs (and stores) every op
    separately. `reduce_retracing` relaxes the dimensions, so new batch or
    image sizes only recompile."""
    import tensorflow as tf

    # a partial, not the function itself: TensorFlow counts traces per code
    # object to warn about retracing, and every structure's pass shares one
    return tuple(tf.function(functools.partial(function), jit_compile=True,
                             reduce_retracing=True)
                 for function in _passes(
                     structure, primitives=TENSORFLOW_PRIMITIVES))


@functools.lru_cache(maxsize=256)
def _jit_scope_passes(structure):
    """The passes written inline inside an XLA `jit_scope`, for graphs on
    TensorFlow: TensorFlow compiles them as one cluster when the graph runs,
    and the graph holds plain ops, which exporters (tf2onnx, for
    `model.export(format="onnx")`) convert, where they cannot convert a
    call to a compiled function. Inside an outer XLA function the ops are
    compiled with it. Every op is elementwise, a pad, a slice or a product
    with a constant-shaped kernel, so a NaN or Inf stays in its window also
    where TensorFlow runs them without XLA or constant-folds them."""
    return tuple(_in_jit_scope(function) for function in _passes(
        structure, primitives=TENSORFLOW_PRIMITIVES))


def _in_jit_scope(function):
    def call(*args):
        import tensorflow as tf

        with tf.xla.experimental.jit_scope(
                compile_ops=True, separate_compiled_gradients=False):
            return function(*args)

    return call


def _differentiable_on_torch(passes):
    """Makes the backward differentiable on PyTorch, whose `custom_gradient`
    runs the forward without autograd: its residual carries no graph. Where
    the backward is itself differentiated (`create_graph=True`, grad mode on
    inside the backward), the residual is recomputed from `x` with
    autograd."""
    import torch

    forward_pass, backward_pass = passes

    def differentiable_backward(x, upstream, residual, c):
        if torch.is_grad_enabled():
            _, residual = forward_pass(x, c)
        return backward_pass(x, upstream, residual, c)

    return forward_pass, differentiable_backward


@functools.lru_cache(maxsize=256)
def _torch_eager_passes(structure):
    return _differentiable_on_torch(_passes(structure))


def _custom_gradient_kernel(passes_of):
    """A kernel: the forward pass with the backward pass as its gradient,
    the passes of each structure given by `passes_of(structure)`."""

    def kernel(x, window, alpha, beta, bias, window_scale, learned):
        structure = _formula.Structure.of(x, window, alpha, beta, learned)
        forward_pass, backward_pass = passes_of(structure)
        c = _formula.coefficients(alpha, beta, bias, window_scale, x.dtype)

        @ops.custom_gradient
        def normalized(x, c):
            y, residual = forward_pass(x, c)

            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return backward_pass(x, upstream, residual, c)

            return y, grad

        return normalized(x, c)

    return kernel


# Any other Keras backend: the passes, uncompiled.
portable = _custom_gradient_kernel(functools.lru_cache(maxsize=256)(_passes))
# TensorFlow, called eagerly: the XLA-compiled passes.
tensorflow_eager = _custom_gradient_kernel(_xla_passes)
# TensorFlow, traced into a graph (plain, XLA or an export): inline ops.
tensorflow_graph = _custom_gradient_kernel(_jit_scope_passes)
# PyTorch, eagerly: the cached passes, with a differentiable backward.
torch_eager = _custom_gradient_kernel(_torch_eager_passes)
# PyTorch under `torch.compile`: the passes made anew, so that Dynamo meets
# no cache (it traces through one with a warning).
torch_compiled = _custom_gradient_kernel(
    lambda structure: _differentiable_on_torch(_passes(structure)))


def portable_forward_only(x, window, alpha, beta, bias, window_scale,
                          learned):
    """The forward pass alone, for TorchScript's ONNX exporter, which
    cannot trace a custom autograd function around a Python callable."""
    structure = _formula.Structure.of(x, window, alpha, beta, learned)
    forward_pass, _ = _passes(structure)
    c = _formula.coefficients(alpha, beta, bias, window_scale, x.dtype)
    return forward_pass(x, c)[0]


@functools.lru_cache(maxsize=256)
def _jax_functions(structure):
    """On JAX: LRN for one `Structure` as two `jax.jit`-compiled functions
    `(x, c) -> y`: `traced`, with the backward as its `jax.custom_vjp`, for
    values a JAX transformation traces (inlined into an outer `jit`), and
    `concrete`, the forward alone (its window sum from shifted squares, no
    residual kept), for concrete arrays, which nothing differentiates: an
    eager call is one dispatch of one compiled program. A new input shape
    costs no more memory than a plain `jax.jit` of the formula
    (benchmarks/memory_results.txt). The cotangent of `c` carries the
    learned parameters' gradients (0 for fixed ones).

    The general power is `jax.lax.pow`: the equation `jnp.power` (Keras's
    `ops.power`) traces to, but not the function jax2onnx puts in its place
    while it converts (`model.export(format="onnx")`), whose shape rule
    raises a `TypeError` on a symbolic batch dimension."""
    import jax

    primitives = dataclasses.replace(_formula.KERAS_PRIMITIVES,
                                     power=jax.lax.pow)
    forward_pass, backward_pass = _passes(structure, primitives=primitives)
    forward_only, _ = _passes(structure, True, primitives)

    def single_output(x, c):
        return forward_only(x, c)[0]

    normalized = jax.custom_vjp(single_output)

    def normalized_forward(x, c):
        y, residual = forward_pass(x, c)
        return y, (x, residual, c)

    def normalized_backward(residuals, upstream):
        x, residual, c = residuals
        return backward_pass(x, upstream, residual, c)

    normalized.defvjp(normalized_forward, normalized_backward)
    return jax.jit(normalized), jax.jit(single_output)


def _jax_kernel(traced):
    def kernel(x, window, alpha, beta, bias, window_scale, learned):
        structure = _formula.Structure.of(x, window, alpha, beta, learned)
        compute_dtype = _arguments.compute_dtype_of(structure.input_dtype)
        if learned:
            c = _formula.coefficients(alpha, beta, bias, window_scale,
                                      compute_dtype)
        else:
            c = _formula.constant_coefficients(alpha, beta, bias,
                                               window_scale, compute_dtype)
        return _jax_functions(structure)[0 if traced else 1](x, c)

    return kernel


# JAX, under a transformation (`jit`, `grad`, `vmap`): the `custom_vjp`.
jax_traced = _jax_kernel(traced=True)
# JAX, concrete arrays: the compiled forward alone.
jax_concrete = _jax_kernel(traced=False)


def tensorflow_native(x, window, alpha, beta, bias, window_scale=None,
                      learned=(), backward_passes=_jit_scope_passes):
    """`tf.nn.local_response_normalization`, with a gradient of any order.

    TensorFlow's own gradient, `LRNGrad`, has no gradient itself
    (tensorflow/tensorflow#22825), so the backward pass is the portable one,
    with the denominator recomputed from `x`. Half-precision inputs are
    computed in float32. Fixed parameters and a box window only; the op's
    arguments come from `conventions.CONVENTIONS["tensorflow"]`.
    """
    import tensorflow as tf

    from keras_lrn import conventions

    op_arguments = conventions.from_canonical(
        conventions.CONVENTIONS["tensorflow"], window.before + window.after
        + 1, alpha, beta, bias, "across_channels", "after")
    input_dtype = x.dtype
    structure = _formula.Structure.of(x, window, alpha, beta, ())
    forward_pass, backward_pass = backward_passes(structure)
    c = _formula.coefficients(alpha, beta, bias, None, x.dtype)

    @tf.custom_gradient
    def normalized(x):
        y = tf.nn.local_response_normalization(tf.cast(x, tf.float32),
                                               **op_arguments)

        def grad(upstream):
            _, t = forward_pass(x, c)
            return backward_pass(x, upstream, t, c)[0]

        return tf.cast(y, input_dtype), grad

    return normalized(x)


def tensorflow_native_eager(x, window, alpha, beta, bias, window_scale=None,
                            learned=()):
    """`tensorflow_native` called eagerly: its backward XLA-compiled."""
    return tensorflow_native(x, window, alpha, beta, bias,
                             backward_passes=_xla_passes)

