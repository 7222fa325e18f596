"""keras_lrn._compilation: every kernel of the portable passes that this
backend runs computes the formula (float64 NumPy, tests/reference.py) and
its gradient, whatever the context it was compiled for."""

import keras
import numpy as np
import pytest

from keras_lrn import _compilation
from keras_lrn import _dispatch
from tests import reference

BACKEND = keras.backend.backend()
# the kernels of _compilation that run outside an export on this backend
KERNELS = {
    "tensorflow": ["tensorflow_eager", "tensorflow_graph", "portable"],
    "jax": ["jax_concrete", "jax_traced", "portable"],
    "torch": ["torch_eager", "torch_compiled", "portable_forward_only"],
}.get(BACKEND, ["portable"])


def test_every_compilation_kernel_is_in_the_table():
    named = {row[-1] for row in _dispatch.TABLE}
    for name in _compilation.__all__:
        assert f"_compilation:{name}" in named, name


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("window", ["box", "exponential"])
def test_kernel_computes_the_formula(rng, name, window):
    x = rng.uniform(-4, 4, (2, 3, 3, 8)).astype(np.float32)
    context = (BACKEND, "eager")
    lrn_window = _dispatch.make_window(context, x.shape, 3, "across_channels",
                                       "channels_last", "after", window)
    window_scale = 2.0 if window == "exponential" else None
    kernel = getattr(_compilation, name)
    if name == "tensorflow_graph":
        import tensorflow as tf

        run = tf.function(lambda x: kernel(x, lrn_window, 1e-2, 0.75, 2.0,
                                           window_scale, ()))
    elif name == "jax_traced":
        import jax

        run = jax.jit(lambda x: kernel(x, lrn_window, 1e-2, 0.75, 2.0,
                                       window_scale, ()))
    else:
        def run(x):
            return kernel(keras.ops.convert_to_tensor(x), lrn_window, 1e-2,
                          0.75, 2.0, window_scale, ())
    y = keras.ops.convert_to_numpy(run(x))
    if window == "exponential":
        expected = reference.exponential_lrn(x, 1e-2, 0.75, 2.0, 2.0)
    else:
        expected = reference.lrn(x, size=3, alpha=1e-2, beta=0.75, bias=2.0)
    reference.assert_matches_in_dtype(y, expected, "float32")


@pytest.mark.tensorflow  # TensorFlow graphs
def test_graph_kernel_writes_plain_ops_for_exporters(rng):
    """Traced into a graph, the passes are inline ops in an XLA scope, not
    a call of a compiled function, which tf2onnx could not convert."""
    import tensorflow as tf

    lrn_window = _dispatch.make_window(
        ("tensorflow", "graph"), (1, 3, 3, 8), 3, "across_channels",
        "channels_last", "after", "box")
    graph = tf.function(lambda x: _compilation.tensorflow_graph(
        x, lrn_window, 1e-2, 0.75, 2.0, None, ())).get_concrete_function(
        tf.TensorSpec((1, 3, 3, 8), tf.float32)).graph
    op_types = {op.type for op in graph.get_operations()}
    assert "Sqrt" in op_types
    assert not op_types & {"PartitionedCall", "StatefulPartitionedCall"}
