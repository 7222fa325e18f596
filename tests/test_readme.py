"""The README's examples run as written."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

import keras_lrn

README = pathlib.Path(__file__).parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the quick start is run once, under the TensorFlow backend the "
    "README installs")
def test_quick_start_runs_when_pasted(tmp_path):
    (quick_start,) = [block for block in python_blocks()
                      if "lrn_model.keras" in block]
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    result = subprocess.run([sys.executable, "-c", quick_start],
                            cwd=work, env=dict(os.environ, TMPDIR=str(temp)),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # the model goes to a temporary folder, not the working folder
    assert list(temp.glob("*/lrn_model.keras"))
    assert not list(work.iterdir())


def test_converter_examples_print_what_the_readme_says():
    (examples,) = [block for block in python_blocks() if ">>>" in block]
    for call, shown in re.findall(r">>> (.*?)\n(.*?)\n", examples):
        call = call.split("#")[0]
        assert repr(eval(call, {"keras_lrn": keras_lrn})) == shown.strip()


def test_conventions_table_names_every_converter():
    text = README.read_text()
    for name in ("from_tensorflow", "from_caffe", "from_torch", "from_onnx",
                 "to_tensorflow", "to_caffe", "to_torch", "to_onnx"):
        assert name in text
        assert hasattr(keras_lrn.LRN, name)
