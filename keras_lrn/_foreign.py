"""Every private name of another project that keras-lrn reads, in one place.

Keras, jax2onnx and torch offer public signals for most of what export
needs (`torch.onnx.is_in_onnx_export`, `torch.compiler.is_compiling`,
jax2onnx's `register_primitive`); for four things none exists, and each is
read here only:

- while Keras's `model.export(format="onnx")` traces a TensorFlow model:
  its function `keras.src.export.onnx.export_onnx` on the call stack;
- while jax2onnx converts: its patch registry
  `jax2onnx.plugins.plugin_system._PATCH_STATE`, non-empty only then;
- typing a jax2onnx IR value: `jax2onnx.plugins._ir_shapes.
  _stamp_type_and_shape`;
- the message of Keras's `ImportError` for a missing exporter:
  `keras.src.utils.module_utils.<package>.import_error_msg`.

`PRIVATE_NAMES` lists them; tests/test_foreign.py fails, naming the
dependency and its version, when a release moves one.
"""

import importlib
import sys

__all__ = ["PRIVATE_NAMES", "jax2onnx_converting",
           "jax2onnx_shape_stamper", "keras_exporting_onnx",
           "keras_lazy_module"]

# (dependency, module, attribute) of every private name read here
PRIVATE_NAMES = (
    ("keras", "keras.src.export.onnx", "export_onnx"),
    ("keras", "keras.src.utils.module_utils", "tf2onnx"),
    ("keras", "keras.src.utils.module_utils", "jax2onnx"),
    ("jax2onnx", "jax2onnx.plugins.plugin_system", "_PATCH_STATE"),
    ("jax2onnx", "jax2onnx.plugins._ir_shapes", "_stamp_type_and_shape"),
)


def keras_exporting_onnx():
    """Whether Keras's `export_onnx` is on the call stack (the caller
    asks only while a graph is traced). Keras offers no other sign of an
    ONNX export."""
    frame = sys._getframe(1)
    while frame is not None:
        if (frame.f_code.co_name == "export_onnx"
                and frame.f_globals.get("__name__", "").startswith("keras.")):
            return True
        frame = frame.f_back
    return False


def jax2onnx_converting():
    """Whether jax2onnx is converting a function now: it applies its
    plugins' patches for the time of a conversion (`_PATCH_STATE`)."""
    system = sys.modules.get("jax2onnx.plugins.plugin_system")
    return bool(system is not None and getattr(system, "_PATCH_STATE", None))


def jax2onnx_shape_stamper():
    """jax2onnx's function that gives an IR value its type and shape."""
    from jax2onnx.plugins._ir_shapes import _stamp_type_and_shape

    return _stamp_type_and_shape


def keras_lazy_module(package):
    """Keras's lazy module of an exporter `package` (whose
    `import_error_msg` is its `ImportError`'s message), or `None` where
    this Keras has none."""
    try:
        module_utils = importlib.import_module("keras.src.utils.module_utils")
    except ImportError:
        return None
    return getattr(module_utils, package, None)
