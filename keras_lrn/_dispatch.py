"""The one choice of path for each call: the portable computation
(`keras_lrn._kernels`) or TensorFlow's own LRN op."""

import contextlib
import contextvars
import functools
import sys

import keras

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


def raise_if_native_unavailable(reason):
    """Raises the error for implementation='native' where `reason` says why
    the native op cannot serve (`None`: it can)."""
    if reason is not None:
        raise ValueError(
            "implementation='native' calls tf.nn.local_response_normalization,"
            f" which cannot compute this layer: {reason}. Use "
            "implementation='auto' or 'portable'. "
            "Received: implementation='native'"
        )


def choose_implementation(implementation, shape, dtype, mode, size, bias,
                          beta, data_format, fixed_box=True):
    """Returns "native" or "portable": the path that computes one call.

    "portable" (`keras_lrn._kernels.lrn`) is the default everywhere, because
    it is exact and the fastest on CPU in every TensorFlow context (eager,
    plain `tf.function`, XLA, SavedModel serving): XLA compiles it into one
    fused pass over memory, where `tf.nn.local_response_normalization`'s CPU
    kernel is several times slower and, outside XLA, spreads a NaN or Inf
    over every channel of its pixel (tensorflow/tensorflow#57746), also when
    TensorFlow's graph optimizer constant-folds it. benchmarks/RESULTS.md
    holds the measurements.

    "auto" picks "native" only for fixed parameters and a box window
    (`fixed_box`), and only
    - inside `native_for_export()`, or while Keras's
      `model.export(format="onnx")` traces the model
      (`exporting_onnx_from_tensorflow`), where the op can compute the call,
      so that an exported graph holds one `LRN` op;
    - on a TensorFlow GPU in float32 within cuDNN's limits (depth_radius
      1..7, beta >= 0.01, bias >= 1e-5): cuDNN's LRN kernel.
    "native" raises a `ValueError` where the op cannot compute the call.
    """
    reason = native_unavailable_reason(mode, size, data_format, shape, dtype)
    if implementation == "native":
        raise_if_native_unavailable(reason)
        return "native"
    if implementation == "portable" or reason is not None or not fixed_box:
        return "portable"
    if _NATIVE_FOR_EXPORT.get() or exporting_onnx_from_tensorflow():
        return "native"
    if (
        keras.backend.standardize_dtype(dtype) == "float32"
        and 3 <= size <= 15
        and beta >= 0.01
        and bias >= 1e-5
        and tensorflow_gpu_available()
    ):
        return "native"
    return "portable"


def exporting_onnx_from_tensorflow():
    """Whether Keras's `model.export(format="onnx")` is tracing the model
    on TensorFlow (tf2onnx then converts TensorFlow's LRN op into one ONNX
    `LRN` node, which onnxruntime runs; it never serves TensorFlow's
    kernel). Read from the call stack while a graph is traced, never in
    eager calls: Keras offers no other sign of an ONNX export."""
    import tensorflow as tf

    if tf.executing_eagerly():
        return False
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name == "export_onnx"
                and frame.f_globals.get("__name__", "").startswith("keras.")):
            return True
        frame = frame.f_back
    return False


@functools.cache
def tensorflow_gpu_available():
    """Whether TensorFlow sees a GPU (asked once per process)."""
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))
