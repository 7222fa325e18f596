"""What a user sees where the backend's ONNX exporter package is missing:
Keras's `ImportError`, which keras-lrn makes name the extra that installs
the package (`keras_lrn._exporters`), and that extra in setup.cfg.

Each check runs in a fresh process with the package hidden
(`sys.modules[name] = None` makes its import fail), on the backend under
test, because Keras loads an exporter once per process.
"""

import configparser
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import keras
import pytest

from keras_lrn import _exporters

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()
EXPORTER_PACKAGE = {"tensorflow": "tf2onnx", "jax": "jax2onnx"}


def export_without(package, backend):
    """Exports a one-LRN model with `package` hidden; returns the process's
    stdout (`exported` or the error's type and message)."""
    code = f"""
        import sys
        sys.modules[{package!r}] = None
        import numpy as np, keras, keras_lrn
        model = keras.Sequential([keras.Input((5, 5, 8)), keras_lrn.LRN()])
        model(np.zeros((1, 5, 5, 8), np.float32))
        try:
            model.export(sys.argv[1], format="onnx", verbose=False)
            print("exported")
        except Exception as error:
            print(type(error).__name__, error)
    """
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code),
             os.path.join(folder, "model.onnx")],
            capture_output=True, text=True, cwd=ROOT, timeout=600,
            env={**os.environ, "PYTHONPATH": str(ROOT),
                 "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.tensorflow  # PyTorch's exporter needs no extra package
@pytest.mark.jax
def test_missing_exporter_error_names_the_extra():
    package = EXPORTER_PACKAGE[BACKEND]
    extra = _exporters.EXTRA_OF_EXPORTER[package]
    line = export_without(package, BACKEND)
    assert line.startswith("ImportError"), line
    assert f'pip install "keras-lrn[{extra}]"' in line, line
    assert f"pip install {package}" in line, line  # Keras's own words stay


@pytest.mark.torch  # PyTorch's exporter
def test_torch_export_needs_no_onnxscript():
    """Keras tries `torch.export` first (onnxscript) and falls back to
    TorchScript, which needs nothing more: so no extra is required."""
    assert export_without("onnxscript", BACKEND) == "exported"


def test_each_exporter_extra_holds_its_package():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = config["options.extras_require"]
    for package, extra in _exporters.EXTRA_OF_EXPORTER.items():
        requirements = [line.split(">")[0].split("=")[0].strip()
                        for line in extras[extra].splitlines() if line.strip()]
        assert package in requirements, (extra, requirements)
        assert "onnx" in requirements, (extra, requirements)


def test_naming_the_extras_twice_changes_nothing():
    from keras.src.utils import module_utils

    before = module_utils.jax2onnx.import_error_msg
    _exporters.name_extras_in_keras_errors()
    assert module_utils.jax2onnx.import_error_msg == before
    assert before.count("keras-lrn[onnx-jax]") == 1
