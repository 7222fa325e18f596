"""ONNX export through Keras's own `model.export(path, format="onnx")` on
the backend under test (CI runs this file once per backend).

The exported model is run by onnxruntime and checked against the float64
formula (tests/reference.py) and the Keras model. Where ONNX's `LRN`
operator computes the layer (4-D float32, across channels, an odd window)
the graph holds one `LRN` node (on TensorFlow for channels_last input, which
TensorFlow's op takes: tf2onnx converts it); elsewhere it holds the
formula's nodes and no `LRN`.
"""

import importlib.util

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

BACKEND = keras.backend.backend()
EXPORTER = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "torch"}[
    BACKEND]
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None
    or importlib.util.find_spec(EXPORTER) is None,
    reason=f"needs the package '{EXPORTER}' and onnxruntime (keras-lrn's "
           "test extra)")

KWARGS = dict(alpha=1e-2, beta=0.75, bias=2.0)
# (layer arguments, whether ONNX's LRN operator computes it)
CASES = [
    (dict(size=5), True),
    (dict(size=3, data_format="channels_first"), True),
    (dict(size=4), False),  # even: onnxruntime's LRN takes odd sizes only
    (dict(size=4, even_window_side="before"), False),
    (dict(size=3, mode="within_channel"), False),
    (dict(size=5, beta=0.6, alpha=3e-2, bias=1.0), True),
]


def _input_shape(case):
    return (8, 5, 5) if case.get("data_format") == "channels_first" else (
        5, 5, 8)


def _export(case, path, native=False):
    arguments = dict(KWARGS, **case)
    inputs = keras.Input(_input_shape(case))
    model = keras.Model(
        inputs, keras_lrn.LocalResponseNormalization(**arguments)(inputs))
    model(np.zeros((1,) + _input_shape(case), np.float32))
    if native:
        with keras_lrn.native_for_export():
            model.export(str(path), format="onnx", verbose=False)
    else:
        model.export(str(path), format="onnx", verbose=False)
    return model, arguments


def _run(path, x):
    import onnx
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path))
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    return [node.op_type for node in onnx.load(str(path)).graph.node], output


@pytest.mark.parametrize("case,lrn_node", CASES, ids=str)
def test_exported_model_equals_the_layer(tmp_path, rng, case, lrn_node):
    model, arguments = _export(case, tmp_path / "model.onnx")
    # a batch of 3: the batch dimension stays dynamic in the export
    x = rng.uniform(0, 20, (3,) + _input_shape(case)).astype(np.float32)
    nodes, output = _run(tmp_path / "model.onnx", x)
    expected = reference.lrn(x, **arguments)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        output, keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    if BACKEND == "tensorflow":
        # TensorFlow's op, which tf2onnx converts, takes channels_last only
        lrn_node = lrn_node and case.get("data_format") != "channels_first"
    if lrn_node:
        assert nodes.count("LRN") == 1, nodes
    else:
        assert "LRN" not in nodes, nodes


@pytest.mark.tensorflow  # native_for_export switches to TensorFlow's op
@pytest.mark.parametrize("case", [dict(size=5), dict(size=3, beta=0.5)],
                         ids=str)
def test_tensorflow_exports_one_lrn_node_with_the_switch(tmp_path, rng, case):
    _, arguments = _export(case, tmp_path / "model.onnx", native=True)
    x = rng.uniform(0, 20, (3,) + _input_shape(case)).astype(np.float32)
    nodes, output = _run(tmp_path / "model.onnx", x)
    assert nodes.count("LRN") == 1, nodes
    np.testing.assert_allclose(output, reference.lrn(x, **arguments),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.jax  # the JAX and PyTorch exporters trace the call
@pytest.mark.torch
def test_export_leaves_the_layer_as_it_was(tmp_path, rng):
    # the export path is taken only while exporting: afterwards the layer
    # computes and differentiates as before
    case = dict(size=5)
    model, arguments = _export(case, tmp_path / "model.onnx")
    x = rng.uniform(0, 20, (2,) + _input_shape(case)).astype(np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)),
                               reference.lrn(x, **arguments), rtol=1e-5)
