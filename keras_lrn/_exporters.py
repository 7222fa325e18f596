"""The optional packages Keras's ONNX export needs, and the keras-lrn
extras that install them.

`model.export(path, format="onnx")` converts with `tf2onnx` on TensorFlow
and `jax2onnx` on JAX (on PyTorch with `torch.onnx`, which needs nothing
more for our layers). Without the package Keras raises an `ImportError`
that names only the package; `name_extras_in_keras_errors` adds the extra.
"""

from keras_lrn import _foreign

__all__ = ["EXTRA_OF_EXPORTER", "install_hint",
           "name_extras_in_keras_errors"]

# the exporter package of each backend -> the extra of setup.cfg holding it
EXTRA_OF_EXPORTER = {"tf2onnx": "onnx-tensorflow", "jax2onnx": "onnx-jax"}


def install_hint(package):
    """The sentence naming the extra that installs `package`."""
    extra = EXTRA_OF_EXPORTER[package]
    return f'with keras-lrn: `pip install "keras-lrn[{extra}]"`'


def name_extras_in_keras_errors():
    """Appends `install_hint` to the message of the `ImportError` Keras
    raises where an exporter package is missing.

    Keras loads each exporter through a lazy module
    (`_foreign.keras_lazy_module`) whose `import_error_msg` is that
    message. Where a Keras release has no such module or attribute, its
    message is left as it is. Calling this again changes nothing.
    """
    for package in EXTRA_OF_EXPORTER:
        lazy_module = _foreign.keras_lazy_module(package)
        message = getattr(lazy_module, "import_error_msg", None)
        if not isinstance(message, str) or install_hint(package) in message:
            continue
        lazy_module.import_error_msg = f"{message}, or {install_hint(package)}"
