"""The one door and its dispatch (issue 11): the default path is exact in
every TensorFlow context, `native_for_export()` and implementation="native"
export one LRN op, and compiled work is keyed by structure, not values.

Expected values come from tests/reference.py (float64 NumPy) and
onnxruntime.
"""

import logging

import keras
import numpy as np
import pytest

import keras_lrn
from keras_lrn import LRN
from keras_lrn import _arguments
from keras_lrn import _dispatch
from keras_lrn import _kernels
from keras_lrn import _op
from keras_lrn import ops as lrn_ops
from tests import reference

TENSORFLOW = keras.backend.backend() == "tensorflow"
tensorflow_only = pytest.mark.skipif(
    not TENSORFLOW, reason="TensorFlow contexts, export and its LRN op")
KWARGS = dict(size=3, alpha=1e-3, beta=0.75, bias=2.0)


# --- one door ---------------------------------------------------------------

def test_layer_calls_the_op_without_validating_again(monkeypatch, rng):
    layer = LRN(**KWARGS)
    x = rng.uniform(-5, 5, (1, 3, 3, 6)).astype(np.float32)
    layer(x)

    def fail(*args, **kwargs):
        raise AssertionError("arguments validated again on a call")

    monkeypatch.setattr(_arguments, "validate_arguments", fail)
    monkeypatch.setattr(_arguments, "validate_for_compute_dtype", fail)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)),
                               reference.lrn(x, **KWARGS), rtol=1e-5)


def test_the_op_function_still_validates_its_arguments():
    with pytest.raises(ValueError, match="size=0"):
        lrn_ops.local_response_normalization(np.ones((1, 2, 2, 3)), size=0)


def test_operation_and_layer_have_different_names():
    assert issubclass(_op.LRNOperation, keras.Operation)
    assert _op.LRNOperation.__name__ != LRN.__name__
    assert not hasattr(lrn_ops, "LocalResponseNormalization")


def test_choice_is_always_one_of_the_implementations():
    shape, dtype = (1, 4, 4, 8), "float32"
    for implementation in ("auto", "portable"):
        for mode in ("across_channels", "within_channel"):
            chosen = _dispatch.choose_implementation(
                implementation, shape, dtype, mode, 3, 2.0, 0.75,
                "channels_last")
            assert chosen in _arguments.IMPLEMENTATIONS
            assert chosen == "portable"  # no GPU here


# --- the default path keeps NaN and Inf in their windows ---------------------

def input_with_nan_and_inf():
    x = np.random.default_rng(5).uniform(-20, 20, (1, 2, 2, 12)).astype(
        np.float32)
    x[0, 0, 0, 5] = np.nan  # the case: NaN at channel 5
    x[0, 1, 1, 9] = np.inf
    return x


def assert_formula_exact_with_non_finite(y, x, kwargs=KWARGS):
    expected = reference.lrn(x, **kwargs)
    y = np.asarray(y, np.float64)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert 0 < np.isnan(expected).sum() < expected.size // 4
    np.testing.assert_allclose(y, expected, rtol=1e-5)


@tensorflow_only
@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
def test_default_path_is_local_in_every_tensorflow_context(mode):
    import tensorflow as tf

    x = input_with_nan_and_inf()
    kwargs = dict(KWARGS, mode=mode)
    layer = LRN(**kwargs)
    contexts = {
        "eager": lambda: layer(x),
        "plain graph, runtime input": lambda: tf.function(layer)(x),
        "plain graph, constant input": tf.function(
            lambda: layer(tf.constant(x))),
        "xla": lambda: tf.function(layer, jit_compile=True)(x),
    }
    for name, run in contexts.items():
        assert_formula_exact_with_non_finite(run(), x, kwargs)


@tensorflow_only
def test_default_path_is_local_in_a_served_saved_model(tmp_path):
    import tensorflow as tf

    x = input_with_nan_and_inf()
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, LRN(**KWARGS)(inputs))
    model.export(tmp_path / "served", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    assert_formula_exact_with_non_finite(served.serve(x), x)
    (output,) = served.signatures["serving_default"](
        tf.constant(x)).values()
    assert_formula_exact_with_non_finite(output, x)


# --- exporting one LRN node -------------------------------------------------

def lrn_model(shape, **kwargs):
    inputs = keras.Input(shape)
    model = keras.Model(inputs, LRN(**kwargs)(inputs))
    model(np.zeros((1, *shape), np.float32))  # ONNX export needs a call
    return model


@tensorflow_only
@pytest.mark.parametrize("switch", ["native_for_export", "native"])
def test_onnx_export_holds_one_lrn_node(rng, tmp_path, switch):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    x = rng.uniform(0, 60, (2, 5, 4, 8)).astype(np.float32)
    if switch == "native":
        model = lrn_model(x.shape[1:], implementation="native", **KWARGS)
        model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    else:
        model = lrn_model(x.shape[1:], **KWARGS)
        with keras_lrn.native_for_export():
            model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    graph = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(graph, full_check=True)
    assert [n.op_type for n in graph.graph.node].count("LRN") == 1
    session = onnxruntime.InferenceSession(
        str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(output, reference.lrn(x, **KWARGS), rtol=1e-5)


@tensorflow_only
@pytest.mark.parametrize("kwargs, lrn_nodes", [
    (dict(KWARGS), 1), (dict(KWARGS, mode="within_channel"), 0),
    (dict(KWARGS, size=4), 0)], ids=["across", "within", "even"])
def test_onnx_export_without_the_switch(rng, tmp_path, kwargs, lrn_nodes):
    """Keras's ONNX export alone gives one LRN node where TensorFlow's op
    computes the layer, the formula's plain ops elsewhere."""
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    x = rng.uniform(0, 60, (2, 5, 4, 8)).astype(np.float32)
    model = lrn_model(x.shape[1:], **kwargs)
    model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
    graph = onnx.load(tmp_path / "m.onnx")
    # a valid graph of plain ONNX ops (no call left unconverted) ...
    onnx.checker.check_model(graph, full_check=True)
    op_types = [n.op_type for n in graph.graph.node]
    assert op_types.count("LRN") == lrn_nodes, op_types
    assert not [t for t in op_types if "Call" in t], op_types
    # ... that onnxruntime runs to the formula
    session = onnxruntime.InferenceSession(
        str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(output, reference.lrn(x, **kwargs), rtol=1e-5)
    # the export left eager calls on the portable path
    assert _dispatch.choose_implementation(
        "auto", x.shape, "float32", "across_channels", 5, 2.0, 0.75,
        "channels_last") == "portable"


def tflite_ops_and_output(model, x, tmp_path):
    import tensorflow as tf

    model.export(tmp_path / "saved", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(tmp_path / "saved"))
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    (detail,) = interpreter.get_input_details()
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    output = interpreter.get_tensor(
        interpreter.get_output_details()[0]["index"])
    names = [op["op_name"] for op in interpreter._get_ops_details()]
    return names, output


@tensorflow_only
def test_tflite_conversion_holds_the_builtin_lrn_inside_the_switch(
        rng, tmp_path):
    x = rng.uniform(0, 60, (1, 5, 4, 8)).astype(np.float32)
    model = lrn_model(x.shape[1:], **KWARGS)
    with keras_lrn.native_for_export():
        names, output = tflite_ops_and_output(model, x, tmp_path / "switch")
    assert names.count("LOCAL_RESPONSE_NORMALIZATION") == 1
    np.testing.assert_allclose(output, reference.lrn(x, **KWARGS), rtol=1e-5)
    names, output = tflite_ops_and_output(model, x, tmp_path / "default")
    assert "LOCAL_RESPONSE_NORMALIZATION" not in names
    np.testing.assert_allclose(output, reference.lrn(x, **KWARGS), rtol=1e-5)


@tensorflow_only
def test_switch_keeps_the_portable_path_where_the_op_cannot_serve(rng):
    # within-channel mode, an even size, channels_first: no LRN op exists
    for kwargs in (dict(mode="within_channel"), dict(size=4),
                   dict(data_format="channels_first")):
        with keras_lrn.native_for_export():
            chosen = _dispatch.choose_implementation(
                "auto", (1, 4, 4, 8), "float32",
                kwargs.get("mode", "across_channels"), kwargs.get("size", 3),
                2.0, 0.75, kwargs.get("data_format", "channels_last"))
        assert chosen == "portable"


# --- compiled work keyed by structure, not by values -------------------------

class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _structure_cache():
    """The cache of compiled work per `Structure`: one function per
    structure on JAX, a forward and a backward pass on TensorFlow. A fixed
    box window compiles nothing per structure on PyTorch (its kernels run
    eagerly, or inside the caller's `torch.compile`)."""
    if keras.backend.backend() == "jax":
        return _kernels.compiled_lrn
    return _kernels.compiled_pass


def test_new_alpha_and_bias_compile_nothing(monkeypatch, rng):
    traces = []
    forward = _kernels.forward

    def counting_forward(*args, **kwargs):
        traces.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(_kernels, "forward", counting_forward)
    _structure_cache().cache_clear()
    records = _Records()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(records)
    x = rng.uniform(0, 4, (2, 3, 3, 8)).astype(np.float32)
    try:
        for i in range(12):
            alpha, bias = 1e-3 * (1 + i), 1.0 + i / 7
            y = LRN(size=3, alpha=alpha, bias=bias)(x)
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(y),
                reference.lrn(x, size=3, alpha=alpha, beta=0.75, bias=bias),
                rtol=1e-5)
    finally:
        logger.removeHandler(records)
    if keras.backend.backend() != "torch":
        assert _structure_cache().cache_info().currsize == 1
    assert not [m for m in records.messages if "retracing" in m]
    if keras.backend.backend() in ("tensorflow", "jax"):
        assert len(traces) == 1  # traced once, then only run


def test_general_betas_share_one_structure_and_fast_betas_have_their_own(
        rng):
    _structure_cache().cache_clear()
    x = rng.uniform(0, 4, (1, 3, 3, 8)).astype(np.float32)
    for beta in (0.6, 1.7, 2.5, 0.75, 0.5):
        y = LRN(size=3, alpha=1e-2, beta=beta)(x)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(y),
            reference.lrn(x, size=3, alpha=1e-2, beta=beta, bias=2.0),
            rtol=1e-5)
    if keras.backend.backend() != "torch":
        assert _structure_cache().cache_info().currsize == 3


# --- the native op's guards ---------------------------------------------------

@tensorflow_only
@pytest.mark.parametrize("rank", [3, 5, 6])
def test_native_op_refuses_ranks_other_than_four(rank):
    shape = (1,) + (3,) * (rank - 2) + (8,)
    reason = _dispatch.native_unavailable_reason(
        "across_channels", 5, "channels_last", shape, "float32")
    assert reason is not None and "4-D" in reason
    with pytest.raises(ValueError, match="4-D"):
        LRN(implementation="native").build(shape)
    assert _dispatch.native_unavailable_reason(
        "across_channels", 5, "channels_last", (1, 3, 3, 8),
        "float32") is None


@tensorflow_only
def test_auto_picks_cudnn_only_within_its_limits(monkeypatch):
    """The TensorFlow GPU branch, with a GPU pretended: float32, sizes 3 to
    15, beta >= 0.01, bias >= 1e-5, fixed parameters and a box window."""
    monkeypatch.setattr(_dispatch, "tensorflow_gpu_available", lambda: True)
    base = dict(implementation="auto", shape=(1, 4, 4, 32), dtype="float32",
                mode="across_channels", size=5, bias=2.0, beta=0.75,
                data_format="channels_last")
    assert _dispatch.choose_implementation(**base) == "native"
    for change in (dict(dtype="float16"), dict(dtype="float64"),
                   dict(size=17), dict(size=1), dict(beta=0.005),
                   dict(bias=1e-6), dict(implementation="portable"),
                   dict(fixed_box=False), dict(size=4),
                   dict(shape=(1, 4, 32))):
        assert _dispatch.choose_implementation(**dict(base, **change)) == (
            "portable"), change
    for size in (3, 15):
        assert _dispatch.choose_implementation(
            **dict(base, size=size)) == "native"
    monkeypatch.setattr(_dispatch, "tensorflow_gpu_available", lambda: False)
    assert _dispatch.choose_implementation(**base) == "portable"
