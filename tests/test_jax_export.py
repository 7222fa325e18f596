"""keras_lrn/_jax_export.py: the `keras_lrn_lrn` primitive that jax2onnx
writes as one ONNX `LRN` node, called directly.

Outside a conversion the primitive evaluates and compiles as the formula:
checked against the float64 formula (tests/reference.py), eager and under
`jax.jit`. Converted by jax2onnx, it is one `LRN` node (between two
`Transpose` nodes for channels_last input) whose attributes are ONNX's
spelling of the layer's, and onnxruntime computes the formula with it.
JAX only (the module imports jax).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_lrn import _windows
from tests import reference

pytestmark = pytest.mark.jax

# (layer arguments, input shape): what ONNX's LRN computes (4-D float32,
# across the channels of axis 1 or 3, an odd window), every power path
CASES = [
    (dict(size=5, alpha=1e-2, beta=0.75, bias=2.0), (2, 4, 5, 8)),
    (dict(size=3, alpha=3e-2, beta=0.5, bias=1.0,
          data_format="channels_first"), (2, 7, 4, 5)),
    (dict(size=7, alpha=1e-2, beta=1.0, bias=0.5), (1, 3, 3, 9)),
    (dict(size=1, alpha=1e-1, beta=1.3, bias=1.0,
          data_format="channels_first"), (1, 4, 3, 3)),
]


@pytest.fixture(scope="module")
def jax_export():
    from keras_lrn import _jax_export

    return _jax_export


def _node(jax_export, case, shape):
    window = _windows.BoxWindow.of(
        shape, case["size"], "across_channels",
        case.get("data_format", "channels_last"), "after")
    return lambda x: jax_export.onnx_node(x, window, case["alpha"],
                                         case["beta"], case["bias"])


def _input(shape):
    return np.random.default_rng(sum(shape)).uniform(0, 20, shape).astype(
        np.float32)


@pytest.mark.parametrize("case, shape", CASES, ids=str)
def test_the_primitive_evaluates_and_compiles_as_the_formula(
        jax_export, case, shape):
    import jax

    function = _node(jax_export, case, shape)
    x = _input(shape)
    expected = reference.lrn(x, **case)
    for computed in (function(x), jax.jit(function)(x)):
        assert computed.shape == shape and computed.dtype == np.float32
        reference.assert_matches_in_dtype(np.asarray(computed), expected,
                                          "float32")


@pytest.mark.parametrize("case, shape", CASES, ids=str)
def test_jax2onnx_writes_one_lrn_node_that_onnxruntime_runs(
        jax_export, case, shape):
    import jax
    import jax.numpy as jnp

    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    jax2onnx = pytest.importorskip("jax2onnx")
    model = jax2onnx.to_onnx(_node(jax_export, case, shape),
                             [jax.ShapeDtypeStruct(shape, jnp.float32)])
    nodes = [node.op_type for node in model.graph.node]
    assert nodes == (["LRN"] if case.get("data_format") == "channels_first"
                     else ["Transpose", "LRN", "Transpose"])
    (lrn,) = [node for node in model.graph.node if node.op_type == "LRN"]
    attributes = {a.name: onnx.helper.get_attribute_value(a)
                  for a in lrn.attribute}
    # ONNX's LRN divides alpha by the window: size * alpha per term
    assert attributes == pytest.approx(dict(
        size=case["size"], alpha=case["alpha"] * case["size"],
        beta=case["beta"], bias=case["bias"]), rel=1e-6)
    session = onnxruntime.InferenceSession(model.SerializeToString())
    x = _input(shape)
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(output, reference.lrn(x, **case), rtol=1e-5)


def test_the_primitive_evaluates_after_being_first_imported_during_a_conversion():
    # The dispatch imports keras_lrn._jax_export inside jax2onnx's conversion,
    # while jax2onnx has replaced jax.numpy's functions with its own: what the
    # module captures then must still evaluate afterwards (it once raised
    # "MLIR translation rule for primitive 'jax.numpy.sqrt' not found").
    pytest.importorskip("jax2onnx")
    script = (
        "import sys, numpy as np, keras, keras_lrn, jax\n"
        "assert 'keras_lrn._jax_export' not in sys.modules\n"
        "x = np.random.default_rng(0).uniform(0, 20, (2, 4, 5, 8)).astype('float32')\n"
        "model = keras.Sequential([keras.Input((4, 5, 8)), keras_lrn.LRN(alpha=1e-2)])\n"
        "model(x)\n"
        "import tempfile, os\n"
        "model.export(os.path.join(tempfile.mkdtemp(), 'm.onnx'), format='onnx')\n"
        "assert 'keras_lrn._jax_export' in sys.modules\n"
        "from keras_lrn import _jax_export, _windows\n"
        "window = _windows.BoxWindow.of(x.shape, 5, 'across_channels', 'channels_last', 'after')\n"
        "y = jax.jit(lambda v: _jax_export.onnx_node(v, window, 1e-2, 0.75, 2.0))(x)\n"
        "import json; print(json.dumps(np.asarray(y).tolist()))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=300,
                            env=dict(os.environ, KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr[-3000:]
    x = np.random.default_rng(0).uniform(0, 20, (2, 4, 5, 8)).astype(np.float32)
    computed = np.array(json.loads(result.stdout.strip().splitlines()[-1]),
                        np.float32)
    reference.assert_matches_in_dtype(
        computed, reference.lrn(x, size=5, alpha=1e-2, beta=0.75, bias=2.0),
        "float32")
