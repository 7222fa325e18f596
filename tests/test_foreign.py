"""keras_lrn._foreign: every private name of another project that keras-lrn
reads still exists in the installed release; where one moved, the failure
names the dependency and its version."""

import importlib
import importlib.metadata

import pytest

from keras_lrn import _foreign


def installed_version(dependency):
    try:
        return importlib.metadata.version(dependency)
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("dependency, module, attribute",
                         _foreign.PRIVATE_NAMES,
                         ids=[f"{module}.{name}" for _, module, name
                              in _foreign.PRIVATE_NAMES])
def test_every_private_name_still_exists(dependency, module, attribute):
    version = installed_version(dependency)
    if version is None:
        pytest.skip(f"{dependency} is not installed (the [onnx-jax] extra "
                    "installs jax2onnx)")
    try:
        found = hasattr(importlib.import_module(module), attribute)
    except ImportError:
        found = False
    assert found, (
        f"{dependency} {version} has no {module}.{attribute}, which "
        "keras_lrn/_foreign.py reads: find its new place (or a public "
        "signal) and update _foreign")


def test_the_private_names_are_read_in_one_module_only():
    import pathlib

    import keras_lrn

    package = pathlib.Path(keras_lrn.__file__).parent
    names = {attribute for _, _, attribute in _foreign.PRIVATE_NAMES
             if attribute.startswith("_")} | {"keras.src", "_getframe"}
    readers = sorted(
        path.name for path in package.rglob("*.py")
        if any(name in path.read_text() for name in names))
    assert readers == ["_foreign.py"]


def test_no_conversion_outside_jax2onnx():
    assert _foreign.jax2onnx_converting() is False


def test_no_keras_onnx_export_on_the_stack():
    assert _foreign.keras_exporting_onnx() is False
