"""The one choice of kernel for each call, from one table.

`TABLE` lists every kernel that can compute LRN, keyed by
- the backend (`keras.backend.backend()`);
- the context of the call (`current_context`): eager, traced into a graph
  (a plain `tf.function`, XLA, `jax.jit`/`jax.grad`), exporting (Keras's
  `model.export(format="onnx")`, `native_for_export()`, a jax2onnx
  conversion, TorchScript's `torch.onnx.export`) or compiling
  (`torch.compile`);
- the computation's structure (`structure_of`): the native op asked for,
  a fixed box window that the backend's own LRN operator computes (or
  cuDNN's, on a TensorFlow GPU), another fixed box, or the general case
  (learned parameters or an exponential window).

`choose_kernel` looks the call up once; the kernels never ask which
backend or context they run in. This module alone calls
`keras.backend.backend()` or inspects tracing (tests/test_dispatch.py scans
the package for it).
"""

import contextlib
import contextvars
import functools

import keras

from keras_lrn import _arguments
from keras_lrn import _compilation
from keras_lrn import _foreign
from keras_lrn import _windows

__all__ = ["TABLE", "choose_kernel", "current_context", "kernel",
           "make_window", "native_for_export", "op_name_scope",
           "raise_if_native_unavailable", "static_shape"]

# TensorFlow writes the name scope into the name of every op of a graph, so
# a layer's name costs its length once per op: LRN's call has about 50 ops
# where Dense's has 10, and a 300 KB name cost 3.7 times Dense's time and
# memory. The ops of a layer's `call` are named under at most this many
# characters of the layer's name (`op_name_scope`).
LONGEST_OP_SCOPE = 256

ANY = None
# (backend, contexts, structures, kernel): the first row that holds the
# call's backend, context and structure names its kernel ("module:function"
# in keras_lrn); ANY matches everything.
TABLE = (
    # TensorFlow's own op where asked for, exported, or on a GPU (cuDNN);
    # its backward is the portable one, compiled for the context
    ("tensorflow", ("eager", "eager_export"), ("native",),
     "_compilation:tensorflow_native_eager"),
    ("tensorflow", ("graph", "graph_export"), ("native",),
     "_compilation:tensorflow_native"),
    ("tensorflow", ("eager_export",), ("lrn_op", "cudnn"),
     "_compilation:tensorflow_native_eager"),
    ("tensorflow", ("graph_export",), ("lrn_op", "cudnn"),
     "_compilation:tensorflow_native"),
    ("tensorflow", ("eager",), ("cudnn",),
     "_compilation:tensorflow_native_eager"),
    ("tensorflow", ("graph",), ("cudnn",), "_compilation:tensorflow_native"),
    # else the portable passes: XLA-compiled eagerly, inline ops in graphs
    ("tensorflow", ("eager", "eager_export"), ANY,
     "_compilation:tensorflow_eager"),
    ("tensorflow", ("graph", "graph_export"), ANY,
     "_compilation:tensorflow_graph"),
    ("jax", ("onnx_export",), ("lrn_op",), "_jax_export:onnx_node"),
    ("jax", ("onnx_export", "traced"), ANY, "_compilation:jax_traced"),
    ("jax", ("eager",), ANY, "_compilation:jax_concrete"),
    ("torch", ("eager",), ("lrn_op", "box"), "_torch_kernels:in_place"),
    ("torch", ("compile",), ("lrn_op", "box"), "_torch_kernels:fused"),
    ("torch", ("onnx_export",), ("lrn_op",), "_torch_kernels:onnx_node"),
    ("torch", ("onnx_export",), ("box",), "_torch_kernels:formula"),
    ("torch", ("eager",), ("general",), "_compilation:torch_eager"),
    ("torch", ("compile",), ("general",), "_compilation:torch_compiled"),
    ("torch", ("onnx_export",), ("general",),
     "_compilation:portable_forward_only"),
    # any other Keras backend: the portable passes, uncompiled
    (ANY, ANY, ANY, "_compilation:portable"),
)
# How each backend multiplies by the exponential window's kernel (see
# `ExponentialWindow.product`); "matmul" elsewhere.
MATRIX_PRODUCT = {"torch": "einsum"}

_NATIVE_FOR_EXPORT = contextvars.ContextVar("native_for_export", default=False)


@contextlib.contextmanager
def native_for_export():
    """Within this context, "auto" emits TensorFlow's own LRN op.

    For exporting one `LRN` node: a model traced inside it (by
    `model.export`, `tf.lite.TFLiteConverter`, tf2onnx) holds one
    `tf.nn.local_response_normalization` op for each layer and op call with
    `implementation="auto"` that the op can compute (TensorFlow backend,
    across channels, 4-D channels_last input, odd size, not float64, fixed
    parameters and a box window). tf2onnx turns it into ONNX's `LRN` node
    and the TFLite converter into its builtin
    `LOCAL_RESPONSE_NORMALIZATION`. Other calls keep the portable path.
    `implementation="native"` does the same for one layer.

    `model.export(path, format="onnx")` needs no switch: while Keras's
    ONNX export traces the model, "auto" emits the op too. The switch is for
    the other exports (a SavedModel for the TFLite converter, tf2onnx called
    directly). Outside exports, "auto" stays on the portable path:
    TensorFlow's CPU kernel spreads a NaN or Inf over every channel of its
    pixel, and it is slower (benchmarks/RESULTS.md).

    Example:

    ```python
    with keras_lrn.native_for_export():
        model.export("saved_model")  # then tf.lite.TFLiteConverter
    ```
    """
    token = _NATIVE_FOR_EXPORT.set(True)
    try:
        yield
    finally:
        _NATIVE_FOR_EXPORT.reset(token)


def current_context(x, *parameters):
    """`(backend, context)` of a call on tensor `x` with `parameters` (the
    learned ones may be traced where `x` is not); see the module."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.executing_eagerly():
            return backend, ("eager_export" if _NATIVE_FOR_EXPORT.get()
                             else "eager")
        exporting = (_NATIVE_FOR_EXPORT.get()
                     or _foreign.keras_exporting_onnx())
        return backend, "graph_export" if exporting else "graph"
    if backend == "jax":
        import jax

        if _foreign.jax2onnx_converting():
            return backend, "onnx_export"
        traced = any(isinstance(value, jax.core.Tracer)
                     for value in (x,) + parameters)
        return backend, "traced" if traced else "eager"
    if backend == "torch":
        import torch

        if torch.compiler.is_compiling():
            return backend, "compile"
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
            return backend, "onnx_export"
    return backend, "eager"


def static_shape(x, context):
    """`_arguments.static_shape`, also while TorchScript traces the call for
    ONNX export, where lengths are traced tensors: the window is then
    placed once, from the traced input's lengths (the tracer's warnings
    about reading them are expected)."""
    if context == ("torch", "onnx_export"):
        from keras_lrn import _torch_kernels

        with _torch_kernels.quiet_tracer():
            return tuple(int(length) for length in x.shape)
    return _arguments.static_shape(x)


def make_window(context, shape, size, mode, data_format, even_window_side,
                window):
    """The `BoxWindow` or `ExponentialWindow` of a call on input `shape`."""
    if window == "exponential":
        return _windows.ExponentialWindow.of(
            shape, data_format,
            product=MATRIX_PRODUCT.get(context[0], "matmul"))
    return _windows.BoxWindow.of(shape, size, mode, data_format,
                                 even_window_side)


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


def raise_if_native_unavailable(mode, size, data_format, shape=None,
                                dtype=None):
    """Raises the error for implementation='native' where the native op
    cannot compute the call (`native_unavailable_reason`)."""
    reason = native_unavailable_reason(mode, size, data_format, shape, dtype)
    if reason is not None:
        raise ValueError(
            "implementation='native' calls tf.nn.local_response_normalization,"
            f" which cannot compute this layer: {reason}. Use "
            "implementation='auto' or 'portable'. "
            "Received: implementation='native'"
        )


def _onnx_computes(shape, dtype, window):
    """Whether ONNX's `LRN` operator computes this box window: it sums
    across the channels (axis 1, or 3 after a transpose) of 4-D float32
    input. ONNX defines even sizes too (the extra element after the centre),
    but onnxruntime's kernel refuses them (`size_ % 2 == 1`), so only odd
    windows qualify."""
    return (len(shape) == 4
            and keras.backend.standardize_dtype(dtype) == "float32"
            and len(window.axes) == 1 and window.axes[0] in (1, 3)
            and window.before == window.after)


def structure_of(backend, shape, dtype, window, implementation, mode, size,
                 beta, bias, data_format, learned):
    """The structure name of a call in `TABLE` (see the module)."""
    if implementation == "native":
        raise_if_native_unavailable(mode, size, data_format, shape, dtype)
        return "native"
    if learned or not isinstance(window, _windows.BoxWindow):
        return "general"
    if backend != "tensorflow":
        return "lrn_op" if _onnx_computes(shape, dtype, window) else "box"
    if (implementation == "portable" or native_unavailable_reason(
            mode, size, data_format, shape, dtype) is not None):
        return "box"
    if (keras.backend.standardize_dtype(dtype) == "float32"
            and 3 <= size <= 15 and beta >= 0.01 and bias >= 1e-5
            and tensorflow_gpu_available()):
        return "cudnn"
    return "lrn_op"


def choose_kernel(context, shape, dtype, window, implementation, mode, size,
                  beta, bias, data_format, learned=()):
    """The kernel (`TABLE`'s "module:function") that computes one call.

    The portable passes are the default everywhere, because they are exact
    and the fastest on CPU in every TensorFlow context (eager, plain
    `tf.function`, XLA, SavedModel serving): XLA compiles them into one
    fused pass over memory, where `tf.nn.local_response_normalization`'s
    CPU kernel is slower and, outside XLA, spreads a NaN or Inf over every
    channel of its pixel (tensorflow/tensorflow#57746), also when
    TensorFlow's graph optimizer constant-folds it (benchmarks/RESULTS.md).
    TensorFlow's op serves exports (one `LRN` node), `implementation=
    "native"` (a `ValueError` where it cannot compute the call) and cuDNN on
    a GPU in float32 within its limits (depth_radius 1..7, beta >= 0.01,
    bias >= 1e-5).
    """
    backend, name = context
    structure = structure_of(backend, shape, dtype, window, implementation,
                             mode, size, beta, bias, data_format, learned)
    for backends, contexts, structures, chosen in TABLE:
        if ((backends is ANY or backends == backend)
                and (contexts is ANY or name in contexts)
                and (structures is ANY or structure in structures)):
            return chosen
    raise AssertionError(f"no kernel for {context}, {structure}")


def kernel(name):
    """The function a `TABLE` entry names. Plain imports, no cache: under
    `torch.compile` Dynamo traces this function."""
    module, function = name.split(":")
    if module == "_torch_kernels":
        from keras_lrn import _torch_kernels as source
    elif module == "_jax_export":
        from keras_lrn import _jax_export as source
    else:
        source = _compilation
    return getattr(source, function)


def op_name_scope(name):
    """On TensorFlow, for a layer name longer than `LONGEST_OP_SCOPE`, a
    name scope of its first characters for the ops of `call`, so that the
    name costs what it costs any Keras layer; otherwise nothing."""
    if (len(name) <= LONGEST_OP_SCOPE
            or keras.backend.backend() != "tensorflow"):
        return contextlib.nullcontext()
    import tensorflow as tf

    # a scope ending in "/" is used as given, not nested in the layer's
    return tf.name_scope(name[:LONGEST_OP_SCOPE] + "/")


@functools.cache
def tensorflow_gpu_available():
    """Whether TensorFlow sees a GPU (asked once per process)."""
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))
