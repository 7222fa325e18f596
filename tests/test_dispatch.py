"""The one door and its dispatch (issues 11, 25, 30): one table chooses the
kernel of every call, with the arguments the op really passes; the default
path is exact in every TensorFlow context, `native_for_export()` and
implementation="native" export one LRN op, compiled work is keyed by
structure, not values, and no module but the dispatch asks which backend or
tracing context it runs in.

Expected values come from tests/reference.py (float64 NumPy) and
onnxruntime.
"""

import ast
import contextlib
import logging
import pathlib

import keras
import numpy as np
import pytest

import keras_lrn
from keras_lrn import LRN
from keras_lrn import _arguments
from keras_lrn import _compilation
from keras_lrn import _dispatch
from keras_lrn import _formula
from keras_lrn import _value_gate
from tests import reference

BACKEND = keras.backend.backend()
KWARGS = dict(size=3, alpha=1e-3, beta=0.75, bias=2.0)


# --- one door ---------------------------------------------------------------

def test_layer_calls_the_op_without_validating_again(monkeypatch, rng):
    layer = LRN(**KWARGS)
    x = rng.uniform(-5, 5, (1, 3, 3, 6)).astype(np.float32)
    layer(x)

    def fail(*args, **kwargs):
        raise AssertionError("arguments validated again on a call")

    monkeypatch.setattr(_arguments, "validate_arguments", fail)
    monkeypatch.setattr(_value_gate, "validate_for_compute_dtype", fail)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)),
                               reference.lrn(x, **KWARGS), rtol=1e-5)


@contextlib.contextmanager
def kernels_chosen(monkeypatch):
    """Records the kernel `_dispatch.choose_kernel` returns on each call
    made inside, with the arguments the op passes it."""
    chosen = []
    choose = _dispatch.choose_kernel

    def recording(*args, **kwargs):
        chosen.append(choose(*args, **kwargs))
        return chosen[-1]

    with monkeypatch.context() as patch:
        patch.setattr(_dispatch, "choose_kernel", recording)
        yield chosen


def table_kernels():
    return {row[-1] for row in _dispatch.TABLE}


def test_every_table_entry_names_a_kernel():
    for name in table_kernels():
        module, function = name.split(":")
        if module == "_torch_kernels" and BACKEND != "torch":
            continue
        if module == "_jax_export" and BACKEND != "jax":
            continue
        assert callable(_dispatch.kernel(name)), name


# the kernel of an eager call of a layer of each structure on this backend
# (a TensorFlow GPU takes cuDNN's LRN for a fixed float32 box within its
# limits)
EAGER_KERNEL = {
    "tensorflow": dict(box="_compilation:tensorflow_eager",
                       general="_compilation:tensorflow_eager"),
    "jax": dict(box="_compilation:jax_concrete",
                general="_compilation:jax_concrete"),
    "torch": dict(box="_torch_kernels:in_place",
                  general="_compilation:torch_eager"),
}
STRUCTURES = {
    "fixed box": (dict(KWARGS), "box"),
    "fixed within": (dict(KWARGS, mode="within_channel"), "box"),
    "fixed exponential": (dict(window="exponential", window_scale=2.0),
                          "general"),
    "learned box": (dict(KWARGS, learnable=True), "general"),
    "learned exponential": (dict(window="exponential", window_scale=2.0,
                                 learnable=True), "general"),
}


def expected_eager_kernel(kwargs, structure):
    if (BACKEND == "tensorflow" and structure == "box"
            and kwargs.get("mode", "across_channels") == "across_channels"
            and _dispatch.tensorflow_gpu_available()):
        return "_compilation:tensorflow_native_eager"
    return EAGER_KERNEL[BACKEND][structure]


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_eager_calls_run_the_kernel_of_their_structure(
        monkeypatch, rng, name):
    """Through the arguments the layer and the op really pass: a fixed
    exponential window or a learned box is "general", never the fixed box's
    kernels (issue 30: `fixed_box=not learned` sent a fixed exponential
    window to TensorFlow's op)."""
    kwargs, structure = STRUCTURES[name]
    x = rng.uniform(-5, 5, (2, 4, 4, 8)).astype(np.float32)
    with kernels_chosen(monkeypatch) as chosen:
        y = LRN(**kwargs)(x)
    assert chosen == [expected_eager_kernel(kwargs, structure)]
    reference_kwargs = dict(size=5, alpha=1e-4, beta=0.75, bias=2.0)
    reference_kwargs.update((k, v) for k, v in kwargs.items()
                            if k in ("size", "alpha", "beta", "bias", "mode"))
    if kwargs.get("window") == "exponential":
        expected = reference.exponential_lrn(x, 1e-4, 0.75, 2.0, 2.0)
    else:
        expected = reference.lrn(x, **reference_kwargs)
    reference.assert_matches_in_dtype(keras.ops.convert_to_numpy(y),
                                      expected, "float32")


@pytest.mark.parametrize("kwargs", [
    dict(window="exponential", window_scale=2.0),
    dict(window="exponential", window_scale=2.0, learnable=["alpha"]),
    dict(KWARGS, learnable=True)], ids=["fixed-exp", "learned-exp",
                                         "learned-box"])
def test_general_structures_run_inside_native_for_export(rng, kwargs):
    """Inside `native_for_export()` only a fixed box window may reach
    TensorFlow's op: the other structures keep the portable path, run and
    match the reference (issue 30's planted bug raised AttributeError)."""
    x = rng.uniform(-5, 5, (2, 4, 4, 8)).astype(np.float32)
    with keras_lrn.native_for_export():
        y = keras.ops.convert_to_numpy(LRN(**kwargs)(x))
        if BACKEND == "tensorflow":
            import tensorflow as tf

            traced = tf.function(LRN(**kwargs))(x).numpy()
            np.testing.assert_array_equal(traced, y)
    if kwargs.get("window") == "exponential":
        expected = reference.exponential_lrn(x, 1e-4, 0.75, 2.0, 2.0)
    else:
        expected = reference.lrn(x, **KWARGS)
    reference.assert_matches_in_dtype(y, expected, "float32")


# Names that ask which backend or tracing context a call runs in; only
# keras_lrn/_dispatch.py may use them. keras_lrn/_foreign.py reads the
# private export state of Keras and jax2onnx for the dispatch (its
# functions are called from the dispatch only).
CONTEXT_QUESTIONS = {"backend", "executing_eagerly", "is_compiling",
                     "is_in_onnx_export", "is_tracing", "Tracer",
                     "keras_exporting_onnx", "jax2onnx_converting",
                     "_getframe", "inside_function"}
MAY_ASK = {"_dispatch.py": CONTEXT_QUESTIONS,
           "_foreign.py": {"_getframe"}}


def context_questions(path):
    """`(line, name)` of every attribute in `CONTEXT_QUESTIONS` that the
    module at `path` reads (`keras.backend.backend`, `tf.executing_eagerly`,
    `torch.compiler.is_compiling`, `jax.core.Tracer`, ...)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "backend":  # keras.backend.backend()
                found.append((node.lineno, "backend"))
        elif (isinstance(node, ast.Attribute) and node.attr != "backend"
                and node.attr in CONTEXT_QUESTIONS):
            found.append((node.lineno, node.attr))
    return found


def test_only_the_dispatch_asks_for_the_backend_or_the_tracing_context():
    package = pathlib.Path(keras_lrn.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        allowed = MAY_ASK.get(path.name, set())
        offenders += [f"{path.relative_to(package.parent)}:{line}: {name}"
                      for line, name in context_questions(path)
                      if name not in allowed]
    assert not offenders, (
        "only keras_lrn/_dispatch.py asks which backend or context a call "
        "runs in; add a context or a row to _dispatch.TABLE instead: "
        f"{offenders}")


def test_the_scan_finds_a_question_outside_the_dispatch(tmp_path):
    module = tmp_path / "kernel.py"
    module.write_text("import keras\n"
                      "def f():\n"
                      "    return keras.backend.backend() == 'torch'\n")
    assert context_questions(module) == [(3, "backend")]


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


@pytest.mark.tensorflow  # its contexts, export and its LRN op
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


@pytest.mark.tensorflow  # its contexts, export and its LRN op
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


@pytest.mark.tensorflow  # its contexts, export and its LRN op
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


@pytest.mark.tensorflow  # its contexts, export and its LRN op
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
    assert _dispatch.choose_kernel(
        ("tensorflow", "eager"), x.shape, "float32",
        _dispatch.make_window(("tensorflow", "eager"), x.shape, 5,
                              "across_channels", "channels_last", "after",
                              "box"),
        "auto", "across_channels", 5, 0.75, 2.0, "channels_last") == (
        expected_eager_kernel(kwargs, "box"))


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


@pytest.mark.tensorflow  # its contexts, export and its LRN op
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


@pytest.mark.tensorflow  # its contexts, export and its LRN op
def test_switch_keeps_the_portable_path_where_the_op_cannot_serve(
        monkeypatch, rng):
    # within-channel mode, an even size, channels_first: no LRN op exists
    for kwargs in (dict(mode="within_channel"), dict(size=4),
                   dict(data_format="channels_first")):
        x = rng.uniform(0, 5, (1, 4, 4, 8)).astype(np.float32)
        with kernels_chosen(monkeypatch) as chosen:
            with keras_lrn.native_for_export():
                LRN(**dict(dict(size=3), **kwargs))(x)
        assert chosen == ["_compilation:tensorflow_eager"], kwargs


# --- compiled work keyed by structure, not by values -------------------------

class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _structure_cache():
    """The cache of compiled work per `Structure`: the compiled functions
    on JAX, the XLA-compiled passes of eager calls on TensorFlow. A fixed
    box window compiles nothing per structure on PyTorch (its kernels run
    eagerly, or inside the caller's `torch.compile`)."""
    if keras.backend.backend() == "jax":
        return _compilation._jax_functions
    if keras.backend.backend() == "torch":
        return _compilation._torch_eager_passes
    return _compilation._xla_passes


def test_new_alpha_and_bias_compile_nothing(monkeypatch, rng):
    traces = []
    forward = _formula.forward

    def counting_forward(*args, **kwargs):
        traces.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(_formula, "forward", counting_forward)
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


# --- the native op's guards --------------------------------------------------

@pytest.mark.tensorflow  # its contexts, export and its LRN op
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


@pytest.mark.tensorflow  # its contexts, export and its LRN op
def test_auto_picks_cudnn_only_within_its_limits(monkeypatch, rng):
    """The TensorFlow GPU branch, with a GPU pretended, through real layer
    calls: float32, sizes 3 to 15, beta >= 0.01, bias >= 1e-5, fixed
    parameters and a box window. (TensorFlow's op runs on the CPU too.)"""
    monkeypatch.setattr(_dispatch, "tensorflow_gpu_available", lambda: True)
    base = dict(size=5, bias=2.0, beta=0.75)
    native = "_compilation:tensorflow_native_eager"
    portable = "_compilation:tensorflow_eager"

    def kernel_of(shape=(1, 4, 4, 32), dtype="float32", **kwargs):
        # an input of the layer's dtype (a half-precision layer computes
        # from the caller's input as given: a float32 input is float32 work)
        x = rng.uniform(0, 5, shape).astype(dtype)
        with kernels_chosen(monkeypatch) as chosen:
            LRN(dtype=dtype, **dict(base, **kwargs))(x)
        return chosen

    assert kernel_of() == [native]
    for change in (dict(dtype="float16"), dict(dtype="float64"),
                   dict(size=17), dict(size=1), dict(beta=0.005),
                   dict(bias=1e-6), dict(implementation="portable"),
                   dict(learnable=True), dict(learnable=["alpha"]),
                   dict(size=4), dict(shape=(1, 4, 32)),
                   dict(window="exponential", window_scale=2.0, size=5)):
        assert kernel_of(**change) == [portable], change
    for size in (3, 15):
        assert kernel_of(size=size) == [native]
    monkeypatch.setattr(_dispatch, "tensorflow_gpu_available", lambda: False)
    assert kernel_of() == [portable]
