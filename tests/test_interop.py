"""ONNX export of models that hold the layer, run by onnxruntime.

SavedModel (with its serving signature) and TFLite are tested in
test_saving.py. Reference: the float64 NumPy formula (tests/reference.py);
ONNX's `LRN` attributes are checked against ONNX's own convention (alpha
divided by `size`).
"""

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

onnx = pytest.importorskip(
    "onnx", reason="needs the package 'onnx' (the [test] extra)")
onnxruntime = pytest.importorskip(
    "onnxruntime", reason="needs the package 'onnxruntime' (the [test] extra)")
# Keras exports ONNX through tf2onnx: without it every export here fails
pytest.importorskip(
    "tf2onnx", reason="needs the package 'tf2onnx' (Keras exports ONNX through it; "
    "the [test] extra)")
# ONNX export through tf2onnx on the TensorFlow backend
pytestmark = pytest.mark.tensorflow

CASES = {
    "across_channels": dict(size=5, alpha=1e-3, beta=0.75, bias=2.0),
    "within_channel": dict(size=3, alpha=1e-3, beta=0.5, bias=1.0,
                           mode="within_channel"),
    "even_size": dict(size=4, alpha=1e-3, beta=1.0, bias=1.0),
    "other_beta": dict(size=3, alpha=1e-3, beta=1.7, bias=1.5),
}


def export_and_run(layer, x, tmp_path):
    """Exports Input -> layer to ONNX; returns (node types, ORT output)."""
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, layer(inputs))
    model(x)
    path = tmp_path / "model.onnx"
    model.export(path, format="onnx", verbose=False)
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    return graph, output


@pytest.mark.parametrize("case", CASES)
def test_onnx_export_matches_formula(rng, tmp_path, case):
    x = rng.uniform(0, 60, (2, 6, 5, 8)).astype("float32")
    _, output = export_and_run(keras_lrn.LRN(**CASES[case]), x, tmp_path)
    np.testing.assert_allclose(output, reference.lrn(x, **CASES[case]),
                               rtol=1e-5)


@pytest.mark.parametrize("implementation", ["auto", "native"])
def test_onnx_export_is_one_lrn_node_where_onnx_can_express_it(
    rng, tmp_path, implementation
):
    case = CASES["across_channels"]
    x = rng.uniform(0, 60, (2, 6, 5, 8)).astype("float32")
    # "auto" emits the op inside the export switch only
    with keras_lrn.native_for_export():
        graph, output = export_and_run(
            keras_lrn.LRN(**case, implementation=implementation), x, tmp_path)
    (node,) = [n for n in graph.graph.node if n.op_type == "LRN"]
    attributes = {a.name: onnx.helper.get_attribute_value(a)
                  for a in node.attribute}
    assert attributes["size"] == 5
    assert attributes["alpha"] == pytest.approx(5 * case["alpha"])
    assert attributes["beta"] == pytest.approx(case["beta"])
    assert attributes["bias"] == pytest.approx(case["bias"])
    np.testing.assert_allclose(output, reference.lrn(x, **case), rtol=1e-5)


@pytest.mark.parametrize("case", ["within_channel", "even_size"])
def test_onnx_export_is_a_composition_where_onnx_cannot(rng, tmp_path, case):
    x = rng.uniform(0, 60, (2, 6, 5, 8)).astype("float32")
    graph, output = export_and_run(keras_lrn.LRN(**CASES[case]), x, tmp_path)
    assert not [n for n in graph.graph.node if n.op_type == "LRN"]
    np.testing.assert_allclose(output, reference.lrn(x, **CASES[case]),
                               rtol=1e-5)
