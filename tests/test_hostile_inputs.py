"""Hostile files and odd inputs: what each way in guarantees.

Every value of alpha, beta, bias and window_scale passes one gate
(`_value_gate.validate_for_compute_dtype`) in the dtype the layer computes
and stores in; what each entry path guarantees, and the tests that hold it:

| entry path | guarantee | tests |
|---|---|---|
| `LRN(...)`, `from_*` converters | a `ValueError` naming the value and the bound, in the constructor, for any value the layer's dtype cannot compute finitely (beta bounded above) and for a non-float `dtype` | `test_gate_refuses_values_beyond_the_dtype_from_arguments[constructor-*]`, `test_beta_has_an_upper_bound`, `test_dtype_argument_error_names_dtype` |
| `from_config`, a `.keras` config, legacy configs | the same check as the constructor (it is the constructor); a window of 10**9 loads and costs what the input's width does | `test_gate_refuses_values_beyond_the_dtype_from_arguments[from_config-*]`, `test_keras_file_with_huge_size_*`, `test_legacy_h5_with_huge_depth_radius_*`, the fuzzed loaders |
| learned weights in a `.keras` file | checked before assignment, the stored log rounded to its weight's dtype; int or bool weights refused | `test_gate_refuses_values_beyond_the_dtype_from_files[keras-*]`, `test_keras_file_with_non_float_weights_is_refused` |
| learned weights in a legacy `.h5` (`load_model`, `load_weights`) | checked after Keras assigns them; a refusal restores the constructor's values | `test_gate_refuses_values_beyond_the_dtype_from_files[h5 *]`, `test_load_weights_refusal_leaves_the_constructors_values` |
| `layer.set_weights` | checked before assignment | `test_set_weights_passes_the_gate` |
| the input | a finite input never gives NaN: half-precision layers compute from the caller's input; overflowing sums give the formula's limit 0; empty tensors return themselves | `test_half_precision_layer_computes_from_the_callers_float32_input`, `test_largest_accepted_alpha_with_the_largest_window_sum_is_finite`, the overflow and empty-tensor sections |
| the layer's name | costs LRN what it costs Dense | `test_a_long_layer_name_costs_lrn_what_it_costs_dense` |

ONNX files get their own bounds (structure and bytes, before parsing): see
tests/test_onnx_wire.py and tests/test_zoo.py. Expected values come from tests/reference.py (float64
NumPy).
"""

import json
import math
import re
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_lrn
from keras_lrn import LRN, _operation, legacy
from tests import reference

DATA = reference.__file__.rsplit("/", 1)[0] + "/data"
HUGE_SIZE = 1_000_000_001


def numpy(t):
    return keras.ops.convert_to_numpy(t).astype(np.float64)


def assert_matches(actual, expected):
    np.testing.assert_allclose(numpy(actual), expected, rtol=1e-5, atol=0)


# --- bounded cost: windows wider than the input are clamped (exact) ---------

@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
@pytest.mark.parametrize("even_window_side", ["after", "before"])
def test_huge_window_is_clamped_and_exact(rng, mode, even_window_side):
    x = rng.uniform(-3, 3, (1, 6, 6, 4)).astype(np.float32)
    kwargs = dict(alpha=1e-2, beta=0.75, bias=2.0, mode=mode)
    layer = LRN(size=HUGE_SIZE + (even_window_side == "before"),
                even_window_side=even_window_side, **kwargs)
    # a centred window of 2 * 6 + 1 already spans every axis
    assert_matches(layer(x), reference.lrn(x, size=13, **kwargs))


def _model_file_with_lrn_size(path, size):
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, LRN(size=5, alpha=1e-2, name="norm")(inputs))
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    (layer,) = [layer for layer in config["config"]["layers"]
                if layer["config"]["name"] == "norm"]
    layer["config"]["size"] = size
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)


def test_keras_file_with_huge_size_loads_and_predicts_exactly(rng, tmp_path):
    path = tmp_path / "hostile.keras"
    _model_file_with_lrn_size(path, HUGE_SIZE)
    model = keras.models.load_model(path, safe_mode=True)
    assert model.get_layer("norm").size == HUGE_SIZE
    x = rng.uniform(-3, 3, (1, 6, 6, 4)).astype(np.float32)
    assert_matches(model.predict(x, verbose=0),
                   reference.lrn(x, size=7, alpha=1e-2, beta=0.75, bias=2.0))


def test_legacy_h5_with_huge_depth_radius_loads_and_predicts_exactly(
        rng, tmp_path):
    path = tmp_path / "hostile.h5"
    shutil.copy(f"{DATA}/legacy_tf_keras2_tensorflow.h5", path)
    with h5py.File(path, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        (layer,) = [layer for layer in config["config"]["layers"]
                    if layer["config"]["name"] == "norm1"]
        layer["config"]["depth_radius"] = 10**9
        file.attrs["model_config"] = json.dumps(config)
    model = keras.models.load_model(
        path, custom_objects=keras_lrn.legacy_objects())
    norm = model.get_layer("norm1")
    assert norm.size == 2 * 10**9 + 1
    probe = keras.Model(model.inputs, [norm.input, norm.output])
    x = rng.uniform(0, 1, (1, 6, 6, 3)).astype(np.float32)
    lrn_input, lrn_output = probe.predict(x, verbose=0)
    config = layer["config"]
    assert_matches(lrn_output, reference.lrn(
        lrn_input, size=2 * lrn_input.shape[-1] + 1, alpha=config["alpha"],
        beta=config["beta"], bias=config["bias"]))


@pytest.mark.tensorflow  # unknown dimensions of a traced tf.function
def test_unclampable_huge_window_is_rejected_naming_size():
    import tensorflow as tf

    spec = tf.TensorSpec((1, None, None, 4), tf.float32)
    layer = LRN(size=HUGE_SIZE, mode="within_channel")
    with pytest.raises(ValueError, match=f"size={HUGE_SIZE}"):
        tf.function(layer, input_signature=[spec]).get_concrete_function()
    # across channels the channel count is always known: clamped
    tf.function(LRN(size=HUGE_SIZE), input_signature=[spec]
                ).get_concrete_function()


# --- empty tensors ----------------------------------------------------------

EMPTY_SHAPES = [(1, 0, 0, 8), (1, 4, 0, 0), (0, 5, 5, 3), (1, 0, 5, 3),
                (2, 0, 3), (1, 3, 0, 2, 4)]


@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_empty_input_gives_empty_output_on_the_first_call(shape, mode):
    x = np.zeros(shape, np.float32)
    for data_format in ("channels_last", "channels_first"):
        y = LRN(size=3, mode=mode, data_format=data_format)(x)
        assert tuple(y.shape) == shape
        assert keras.backend.standardize_dtype(y.dtype) == "float32"
        y = keras_lrn.ops.local_response_normalization(
            x, mode=mode, data_format=data_format)
        assert tuple(y.shape) == shape


@pytest.mark.tensorflow  # tf.function graphs
@pytest.mark.parametrize("shape", EMPTY_SHAPES[:3])
def test_empty_input_in_a_graph(shape):
    import tensorflow as tf

    for mode in ("across_channels", "within_channel"):
        for jit_compile in (False, True):
            y = tf.function(LRN(mode=mode), jit_compile=jit_compile)(
                tf.zeros(shape))
            assert tuple(y.shape) == shape


# --- hyperparameters checked against the compute dtype ----------------------

@pytest.mark.parametrize("name, value, dtype", [
    ("bias", 1e-40, "float32"), ("bias", 1e-300, "float32"),
    ("bias", 1e-320, "float64"), ("bias", 1e39, "float32"),
    ("bias", 1e-40, "mixed_float16"), ("bias", 1e-40, "bfloat16"),
    ("alpha", 1e39, "float32"), ("alpha", 1e-45, "float32"),
    ("alpha", 1e39, "mixed_bfloat16"),
])
def test_hyperparameter_outside_the_compute_dtype_raises_in_the_constructor(
        name, value, dtype):
    message = re.escape(f"{name}={value!r}")
    with pytest.raises(ValueError, match=message):
        LRN(**{name: value}, dtype=dtype)


def test_bias_power_that_overflows_raises_naming_bias():
    with pytest.raises(ValueError, match=r"bias=1e-30, beta=2.0"):
        LRN(bias=1e-30, beta=2.0)
    with pytest.raises(ValueError, match="bias"):
        keras_lrn.ops.local_response_normalization(
            np.zeros((1, 4, 4, 8), "float32"), bias=1e-30, beta=2.0)


def test_values_normal_in_float64_are_exact_in_float64(rng, float64):
    # `float64`: JAX computes float64 only with jax_enable_x64 (conftest)
    x = rng.uniform(-2, 2, (1, 3, 3, 6))
    x[0, 0, 0] = 0.0
    for kwargs in (dict(bias=1e-300, beta=0.75),
                   dict(alpha=1e39, bias=1.0, beta=0.5)):
        y = LRN(size=3, dtype="float64", **kwargs)(x)
        expected = reference.lrn(x, size=3, alpha=kwargs.get("alpha", 1e-4),
                                 beta=kwargs["beta"], bias=kwargs["bias"])
        assert not np.isnan(numpy(y)).any()
        np.testing.assert_allclose(numpy(y), expected, rtol=1e-12)


def test_keras_file_with_subnormal_bias_is_rejected_naming_bias(tmp_path):
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, LRN(bias=1e-40, dtype="float64")(inputs))
    model.save(tmp_path / "model.keras")  # normal in float64
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    config = json.loads(files["config.json"])
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "LocalResponseNormalization":
            layer["config"]["dtype"] = "float32"
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with pytest.raises(ValueError, match="bias=1e-40"):
        keras.models.load_model(tmp_path / "bad.keras")


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    alpha=st.sampled_from([0.0, 1e-45, 1e-38, 1e-4, 1.0, 3e38, 1e39]),
    beta=st.sampled_from([0.0, 0.5, 0.75, 1.0, 2.5, 40.0]),
    bias=st.sampled_from([1e-45, 1e-38, 1e-20, 1e-3, 1.0, 1e30, 3e38]),
    scale=st.sampled_from([0.0, 1e-30, 1.0, 1e19, 1e30, 3e38]),
)
def test_nothing_accepted_gives_nan_from_a_finite_input(alpha, beta, bias,
                                                        scale):
    try:
        layer = LRN(size=3, alpha=alpha, beta=beta, bias=bias)
    except ValueError as error:
        assert any(f"{name}=" in str(error)
                   for name in ("alpha", "beta", "bias"))
        return
    x = (np.array([0.0, 1.0, -0.5, 0.25], np.float32) * np.float32(scale)
         ).reshape(1, 1, 1, 4).repeat(2, 1).repeat(2, 2)
    assert not np.isnan(numpy(layer(x))).any()


# --- overflow: the documented limits ----------------------------------------

@pytest.mark.parametrize("dtype, limit", [("float32", 1.8e19),
                                          ("bfloat16", 1.8e19)])
def test_squares_are_exact_below_the_limit_and_zero_above(dtype, limit):
    kwargs = dict(size=3, alpha=1e-30, beta=0.75, bias=1.0)
    below = np.zeros((1, 1, 1, 4), np.float32)
    below[..., 1] = limit
    x = below.astype(reference.NUMPY_DTYPES[dtype])
    y = numpy(keras_lrn.ops.local_response_normalization(x, **kwargs))
    reference.assert_matches_in_dtype(
        y, reference.lrn(x.astype(np.float64), **kwargs), dtype)
    above = (below * 1.1).astype(reference.NUMPY_DTYPES[dtype])
    y = numpy(keras_lrn.ops.local_response_normalization(above, **kwargs))
    # the squares overflow: the window's outputs are 0, never NaN
    np.testing.assert_array_equal(y, np.zeros_like(y))


def test_float16_never_overflows(rng):
    x = np.full((1, 2, 2, 6), 65504.0, np.float16)
    kwargs = dict(size=5, alpha=1e-4, beta=0.75, bias=2.0)
    y = numpy(keras_lrn.ops.local_response_normalization(x, **kwargs))
    reference.assert_matches_in_dtype(
        y, reference.lrn(x.astype(np.float64), **kwargs), "float16")


# --- every error names its cause --------------------------------------------

WINDOW_CONVERTERS = {
    "size": lambda v: LRN.from_torch(size=v),
    "onnx size": lambda v: LRN.from_onnx(size=v),
    "local_size": lambda v: LRN.from_caffe(local_size=v),
    "depth_radius": lambda v: LRN.from_tensorflow(depth_radius=v),
}


@pytest.mark.parametrize("name", WINDOW_CONVERTERS)
@pytest.mark.parametrize("value", [-1, 2.5, True, np.True_, np.float32(5.0),
                                   "5", None])
def test_converter_window_errors_name_the_argument(name, value):
    with pytest.raises(ValueError, match=rf"{name.split()[-1]}="):
        WINDOW_CONVERTERS[name](value)


@pytest.mark.parametrize("name", ["size", "onnx size", "local_size"])
def test_converter_window_of_zero_is_rejected_naming_it(name):
    # (a ZeroDivisionError before: alpha is divided by the window)
    with pytest.raises(ValueError, match=rf"{name.split()[-1]}=0"):
        WINDOW_CONVERTERS[name](0)
    assert LRN.from_tensorflow(depth_radius=0).size == 1  # a radius


@pytest.mark.parametrize("converter", [
    lambda **kw: LRN.from_torch(5, **kw), lambda **kw: LRN.from_onnx(5, **kw),
    lambda **kw: LRN.from_caffe(**kw), lambda **kw: LRN.from_tensorflow(**kw),
])
@pytest.mark.parametrize("value", ["x", None, True, math.nan, -1.0, [1e-4]])
def test_converter_alpha_errors_name_alpha(converter, value):
    with pytest.raises(ValueError, match="alpha="):
        converter(alpha=value)


@pytest.mark.parametrize("config, name", [
    ({"depth_radius": 2, "alpha": "x"}, "alpha"),
    ({"depth_radius": 2, "alpha": None}, "alpha"),
    ({"depth_radius": "2"}, "depth_radius"),
    ({"depth_radius": 2, "bias": None}, "bias"),
    ({"n": 5, "alpha": "x"}, "alpha"),
    ({"n": 5, "alpha": None}, "alpha"),
    ({"n": 5, "k": "2"}, "k"),
    ({"n": 5.0}, "n"),
    ({"size": 5, "alpha": "x"}, "alpha"),
    ({"size": 5, "beta": None}, "beta"),
    ({"n": 5, "k": 1e-40}, "k"),  # subnormal in float32, the compute dtype
    ({"depth_radius": 2, "alpha": 1e39}, "alpha"),
])
def test_legacy_config_errors_name_the_entry(config, name):
    with pytest.raises(ValueError, match=f"{name}="):
        legacy.from_legacy_config(config)


def test_integer_input_fails_when_the_model_is_built():
    inputs = keras.Input((4, 4, 3), dtype="int32")
    with pytest.raises(ValueError, match="dtype=int32"):
        keras.Model(inputs, LRN()(inputs))
    with pytest.raises(ValueError, match="dtype=int32"):
        keras_lrn.ops.local_response_normalization(inputs)


@pytest.mark.tensorflow  # unknown rank in a tf.function
def test_unknown_rank_gets_a_message_that_says_rank():
    import tensorflow as tf

    spec = [tf.TensorSpec(None, tf.float32)]
    built = LRN()
    built.build((None, 4, 4, 8))
    for function in (
        LRN(), built,
        lambda t: keras_lrn.ops.local_response_normalization(t),
        lambda t: _operation.normalize(
            t, size=5, alpha=1e-4, beta=0.75, bias=2.0,
            mode="across_channels", data_format="channels_last",
            even_window_side="after", implementation="auto"),
    ):
        with pytest.raises(ValueError, match="rank"):
            tf.function(function, input_signature=spec
                        ).get_concrete_function()


# One rule for numbers, everywhere: integer arguments take Python or NumPy
# integers; real arguments Python or NumPy integers or floats; no bools, and
# no float as an integer.
INTEGER_ARGUMENTS = {
    "layer size": lambda v: LRN(size=v).size,
    "from_tensorflow depth_radius":
        lambda v: (LRN.from_tensorflow(depth_radius=v).size - 1) // 2,
    "from_caffe local_size": lambda v: LRN.from_caffe(local_size=v).size,
    "from_torch size": lambda v: LRN.from_torch(size=v).size,
    "from_onnx size": lambda v: LRN.from_onnx(size=v).size,
    "legacy n": lambda v: legacy.from_legacy_config({"n": v}).size,
    "ops size": lambda v: (keras_lrn.ops.local_response_normalization(
        np.ones((1, 2, 2, 8), "float32"), size=v), int(v))[1],
}
REAL_ARGUMENTS = {
    "layer alpha": lambda v: LRN(alpha=v).alpha,
    "layer bias": lambda v: LRN(bias=v).bias,
    "from_tensorflow beta": lambda v: LRN.from_tensorflow(beta=v).beta,
    "from_torch k": lambda v: LRN.from_torch(3, k=v).bias,
    "from_onnx bias": lambda v: LRN.from_onnx(3, bias=v).bias,
    "from_caffe alpha": lambda v: LRN.from_caffe(local_size=1,
                                                 alpha=v).alpha,
    "legacy k": lambda v: legacy.from_legacy_config({"n": 3, "k": v}).bias,
}


@pytest.mark.parametrize("where", INTEGER_ARGUMENTS)
def test_integer_arguments_follow_the_numpy_scalar_rule(where):
    read = INTEGER_ARGUMENTS[where]
    for value in (3, np.int64(3), np.int32(3), np.uint8(3)):
        assert read(value) == 3
    for value in (True, np.True_, 3.0, np.float32(3.0), np.float64(3.0),
                  "3", None, np.array([3])):
        with pytest.raises(ValueError, match=r"Received: .*="):
            read(value)


@pytest.mark.parametrize("where", REAL_ARGUMENTS)
def test_real_arguments_follow_the_numpy_scalar_rule(where):
    read = REAL_ARGUMENTS[where]
    for value in (2, 2.0, np.int64(2), np.float32(2.0), np.float64(2.0)):
        assert read(value) == 2.0 and isinstance(read(value), float)
    for value in (True, np.True_, "2", None, complex(2, 0), [2.0]):
        with pytest.raises(ValueError, match=r"Received: .*="):
            read(value)


# --- config loaders against random corruptions ------------------------------

JUNK = st.one_of(
    st.none(), st.booleans(), st.just(np.True_), st.text(max_size=3),
    st.integers(-3, 40), st.integers(10**9, 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([np.float32(3.0), np.int64(4), 1e-40, 1e39, -0.0,
                     [1], {"a": 1}, "channels_first", "within_channel",
                     "before", "portable", "native"]),
)
LAYER_CONFIG = dict(size=4, alpha=1e-2, beta=0.6, bias=1.5,
                    mode="across_channels", data_format="channels_last",
                    even_window_side="before", implementation="portable")
CANONICAL_FROM = {
    # each convention's own reading, written from its definition
    "layer": lambda c: dict(c),
    "tensorflow": lambda c: dict(
        size=2 * c["depth_radius"] + 1, alpha=c["alpha"], beta=c["beta"],
        bias=c["bias"], data_format="channels_last"),
    "lrn2d": lambda c: dict(size=c["n"], alpha=c["alpha"], beta=c["beta"],
                            bias=c["k"], data_format="channels_first"),
}
CONFIGS = {
    "layer": LAYER_CONFIG,
    "tensorflow": dict(depth_radius=2, bias=2.0, alpha=1e-3, beta=0.75),
    "lrn2d": dict(alpha=2e-3, k=1.5, beta=0.5, n=3),
}


def _load(kind, config):
    if kind == "layer":
        return LRN.from_config(config)
    return legacy.from_legacy_config(config)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(CONFIGS)), data=st.data(), junk=JUNK)
def test_corrupted_config_raises_naming_the_entry_or_computes_exactly(
        kind, data, junk):
    config = dict(CONFIGS[kind])
    key = data.draw(st.sampled_from(sorted(config)))
    config[key] = junk
    try:
        layer = _load(kind, config)
        x = np.random.default_rng(0).uniform(-2, 2, (1, 3, 3, 4)).astype(
            np.float32)
        y = layer(x)
    except ValueError as error:
        assert f"{key}=" in str(error), (key, junk, str(error))
        return
    expected = CANONICAL_FROM[kind](config)
    expected.pop("implementation", None)
    if expected.get("data_format", "channels_last") is None:
        expected["data_format"] = keras.config.image_data_format()
    for name in ("alpha", "beta", "bias"):
        expected[name] = float(expected[name])
    # every axis here is at most 4 long: a window reaching 4 elements on
    # each side of its centre spans it all, so wider ones are that wide
    size = int(expected["size"])
    expected["size"] = size if size <= 10 else 10 + size % 2
    squares_bound = 4.0 * 3 * 3 * 4  # no window holds more than this
    if expected["alpha"] * squares_bound >= float(np.finfo(np.float32).max):
        # beyond the documented overflow limit: 0 or the formula, never NaN
        assert not np.isnan(numpy(y)).any()
        return
    np.testing.assert_allclose(numpy(y), reference.lrn(x, **expected),
                               rtol=1e-5, atol=1e-30)


def test_gradient_factor_that_overflows_raises_naming_alpha_and_beta():
    with pytest.raises(ValueError, match=r"alpha=1e\+38, beta=0.9"):
        LRN(alpha=1e38, beta=0.9)


# --- issue 26: one gate for every value, in the dtype the layer runs in -----

DTYPES = ("float16", "bfloat16", "float32", "float64")


def _finfo(dtype):
    import ml_dtypes

    return ml_dtypes.finfo(reference.NUMPY_DTYPES[dtype])


def _hostile_logs(dtype):
    """(name, stored logarithm) of learned parameters beyond `dtype`: each
    row of the issue's table, written from the dtype's own limits."""
    info = _finfo(dtype)
    tiny, largest = float(info.tiny), float(info.max)
    beta_largest = largest / (2 * -math.log(tiny))
    rows = [
        ("alpha", math.log(largest) + 0.5),  # exp overflows the weights
        ("bias", math.log(tiny) - 0.5),      # exp no longer normal: 0 soon
        ("beta", math.log(beta_largest) + 0.5),  # beta * log(t) overflows
        ("alpha", math.nan),
        ("bias", math.inf),
    ]
    if dtype == "float16":
        rows.append(("alpha", 20.0))  # the float16 file
    if dtype == "float32":
        rows.append(("beta", 88.8))   # with log(bias) = 0: beta is inf
    if dtype == "bfloat16":
        rows.append(("bias", -87.30))  # rounds to -87.5, below normal
    return rows


GATE_CASES = [(dtype, name, log) for dtype in DTYPES
              for name, log in _hostile_logs(dtype)]


def _value_of(log):
    with np.errstate(over="ignore"):
        return float(np.exp(np.float64(log)))


def _learned_model(dtype, name="norm"):
    inputs = keras.Input((2, 2, 4))
    layer = LRN(size=3, learnable=True, dtype=dtype, bias=1.0, name=name)
    return keras.Model(inputs, layer(inputs))


def _tamper_keras(path, index, value, dtype=np.float32):
    import io

    with zipfile.ZipFile(path) as archive:
        files = {entry: archive.read(entry) for entry in archive.namelist()}
    buffer = io.BytesIO(files["model.weights.h5"])
    with h5py.File(buffer, "r+") as weights:
        (group,) = [weights[f"layers/{key}/vars"]
                    for key in weights["layers"]
                    if key.startswith("local_response_normalization")]
        del group[str(index)]
        group.create_dataset(str(index), data=np.asarray(value, dtype))
    files["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for entry, content in files.items():
            archive.writestr(entry, content)


def _tamper_h5(path, name, value):
    import ml_dtypes

    with h5py.File(path, "r+") as f:
        group = f["model_weights/norm/norm"]
        # float32 also for bfloat16 models: Keras writes their weights as
        # opaque 2-byte records that its own legacy loader cannot read back
        for key in list(group):
            stored = group[key][()]
            if stored.dtype.kind == "V":
                stored = np.asarray(stored).view(ml_dtypes.bfloat16)
            del group[key]
            group.create_dataset(key, data=np.asarray(
                value if key == name else stored, np.float32))


def _assert_refused(error, name):
    message = str(error)
    assert name in message, message
    assert "Received" in message and re.search(
        r"between|at most|finite|normal", message), message


@pytest.fixture
def in_dtype(request):
    """Float64 on JAX needs jax_enable_x64 (conftest's `float64`)."""
    def enter(dtype):
        if dtype == "float64":
            request.getfixturevalue("float64")
    return enter


@pytest.mark.parametrize("door", ["constructor", "from_config"])
@pytest.mark.parametrize("dtype, name, log", GATE_CASES)
def test_gate_refuses_values_beyond_the_dtype_from_arguments(
        in_dtype, door, dtype, name, log):
    in_dtype(dtype)
    arguments = dict(size=3, learnable=True, dtype=dtype, bias=1.0)
    arguments[name] = _value_of(log)
    with pytest.raises(ValueError) as info:
        if door == "constructor":
            LRN(**arguments)
        else:
            LRN.from_config(arguments)
    _assert_refused(info.value, name)


@pytest.mark.parametrize("door", ["keras", "h5 load_model", "h5 load_weights"])
@pytest.mark.parametrize("dtype, name, log", GATE_CASES)
def test_gate_refuses_values_beyond_the_dtype_from_files(
        in_dtype, tmp_path, door, dtype, name, log):
    in_dtype(dtype)
    model = _learned_model(dtype)
    index = ("alpha", "beta", "bias").index(name)
    if door == "keras":
        path = tmp_path / "model.keras"
        model.save(path)
        _tamper_keras(path, index, log)
        with pytest.raises(ValueError) as info:
            keras.models.load_model(path)
    else:
        path = tmp_path / "model.h5"
        model.save(path)
        _tamper_h5(path, name, log)
        with pytest.raises(ValueError) as info:
            if door == "h5 load_model":
                keras.models.load_model(path)
            else:
                _learned_model(dtype).load_weights(path)
    _assert_refused(info.value, name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_load_weights_refusal_leaves_the_constructors_values(in_dtype,
                                                             tmp_path, dtype):
    in_dtype(dtype)
    path = tmp_path / "model.h5"
    _learned_model(dtype).save(path)
    _tamper_h5(path, "alpha", math.nan)
    model = _learned_model(dtype)
    with pytest.raises(ValueError, match="alpha"):
        model.load_weights(path)
    layer = model.get_layer("norm")
    assert math.isfinite(layer.alpha) and math.isfinite(layer.bias)
    x = np.zeros((1, 2, 2, 4), np.float32)
    assert not np.isnan(numpy(model(x))).any()


@pytest.mark.parametrize("kind", [np.int32, np.bool_])
def test_keras_file_with_non_float_weights_is_refused(tmp_path, kind):
    path = tmp_path / "model.keras"
    _learned_model("float32").save(path)
    _tamper_keras(path, 0, 1, dtype=kind)
    with pytest.raises(ValueError, match="must be a float") as info:
        keras.models.load_model(path)
    assert "alpha" in str(info.value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_set_weights_passes_the_gate(in_dtype, dtype):
    in_dtype(dtype)
    layer = _learned_model(dtype).get_layer("norm")
    for weights, name in (([math.nan, 0.0, 0.0], "alpha"),
                          ([-1.0, 0.0, math.log(_finfo(dtype).tiny) - 0.5],
                           "bias")):
        with pytest.raises(ValueError) as info:
            layer.set_weights([np.asarray(w, np.float32) for w in weights])
        _assert_refused(info.value, name)
    with pytest.raises(ValueError, match="must be a float"):
        layer.set_weights([np.asarray(1, np.int32)] * 3)
    layer.set_weights([np.asarray(w, np.float32) for w in (-3.0, 0.0, 0.5)])
    np.testing.assert_allclose(
        [layer.alpha, layer.beta, layer.bias],
        np.exp([-3.0, 0.0, 0.5]), rtol=float(_finfo(dtype).eps) * 4)


@pytest.mark.parametrize("door", ["argument", "config", "converter"])
def test_beta_has_an_upper_bound(door):
    # bias >= 1 puts no bound on beta through bias ** -beta: its own bound
    with pytest.raises(ValueError, match=r"beta.*1\.94\d*e\+36.*beta=1e\+39"):
        if door == "argument":
            LRN(beta=1e39, bias=1.0)
        elif door == "config":
            LRN.from_config(dict(LRN().get_config(), beta=1e39, bias=1.0))
        else:
            legacy.from_legacy_config({"n": 5, "beta": 1e39, "k": 1.0})


@pytest.mark.parametrize("dtype", ["bfloat16", "mixed_bfloat16",
                                   "float16", "mixed_float16"])
def test_values_in_use_read_back_in_every_dtype(dtype):
    layer = LRN(learnable=["alpha", "beta", "bias", "window_scale"],
                window="exponential", window_scale=2.0, dtype=dtype)
    layer.build((None, 2, 2, 4))
    for name, expected in (("alpha", 1e-4), ("beta", 0.75), ("bias", 2.0),
                           ("window_scale", 2.0)):
        value = getattr(layer, name)
        assert isinstance(value, float)
        # the weight holds log(value) rounded to the variable dtype
        eps = float(_finfo(layer.variable_dtype).eps)
        assert abs(value - expected) <= 16 * eps * expected, (name, value)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("learnable", [False, True])
def test_largest_accepted_alpha_with_the_largest_window_sum_is_finite(
        in_dtype, dtype, learnable):
    # alpha at its bound and every input at the dtype's largest number:
    # the window's sum times alpha overflows to the formula's limit, 0
    in_dtype(dtype)
    largest = float(_finfo(dtype).max)
    alpha = largest / 4  # room for a learned weight's rounding
    layer = LRN(size=3, alpha=alpha, beta=0.5, bias=1.0, dtype=dtype,
                learnable=learnable)
    for value in (largest, 1.0, 0.0):
        x = np.full((1, 2, 2, 4), value, reference.NUMPY_DTYPES[dtype])
        assert np.isfinite(numpy(layer(x))).all(), value


def test_dtype_argument_error_names_dtype():
    for dtype in ("int32", "bool", "uint8"):
        with pytest.raises(ValueError,
                           match=rf"Argument `dtype`.*dtype='{dtype}'"):
            LRN(dtype=dtype)


# --- issue 26: finite inputs beyond a half-precision dtype -------------------

@pytest.mark.parametrize("dtype", ["float16", "mixed_float16", "bfloat16",
                                   "mixed_bfloat16"])
@pytest.mark.parametrize("learnable", [False, True])
def test_half_precision_layer_computes_from_the_callers_float32_input(
        dtype, learnable):
    """A float32 input beyond float16's 65504 (or rounding to inf in
    bfloat16) is normalized from its float32 value and rounded once: the
    formula's value, never NaN; where its squares overflow float32, 0."""
    kwargs = dict(size=3, alpha=1e-4, beta=0.75, bias=2.0)
    x = np.zeros((1, 4, 1, 1), np.float32)
    x[0, :, 0, 0] = (1.0, 1e5, 7e4, 3.4e38)
    layer = LRN(**kwargs, learnable=learnable, dtype=dtype)
    y = numpy(keras.ops.cast(layer(x), "float32"))
    assert keras.backend.standardize_dtype(layer(x).dtype) == (
        layer.compute_dtype)
    # the values in use: a learned bfloat16 weight rounds log(alpha)
    in_use = dict(kwargs, alpha=layer.alpha, beta=layer.beta,
                  bias=layer.bias)
    expected = reference.lrn(x.astype(np.float64), **in_use)
    expected[0, 3] = 0.0  # 3.4e38 ** 2 overflows float32: the limit, 0
    compute = layer.compute_dtype

    def assert_matches(actual):
        if learnable:
            # the learned path's exp and log: within two units in the last
            # place of the half-precision output
            np.testing.assert_allclose(
                actual, expected, rtol=2 * float(_finfo(compute).eps))
        else:
            reference.assert_matches_in_dtype(actual, expected, compute)

    assert_matches(y)
    # the functional API, whose keras.Input is float32
    inputs = keras.Input((4, 1, 1))
    model = keras.Model(inputs, layer(inputs))
    assert_matches(
        numpy(keras.ops.cast(model.predict(x, verbose=0), "float32")))


# --- issue 26: strings in configs cost what they cost any Keras layer --------

def _load_and_call_seconds(tmp_path, layer, name):
    import time

    inputs = keras.Input((4, 4, 8))
    path = tmp_path / f"{name}.keras"
    keras.Model(inputs, layer(inputs)).save(path)
    start = time.perf_counter()
    model = keras.models.load_model(path)
    model.predict(np.zeros((1, 4, 4, 8), np.float32), verbose=0)
    return time.perf_counter() - start


def test_a_long_layer_name_costs_lrn_what_it_costs_dense(tmp_path):
    name = "n" * 200_000
    # a warm-up of each, then the better of two: the ratio, not a time
    times = {"lrn": [], "dense": []}
    for _ in range(2):
        times["dense"].append(_load_and_call_seconds(
            tmp_path, keras.layers.Dense(8, name=name), "dense"))
        times["lrn"].append(_load_and_call_seconds(
            tmp_path, LRN(name=name), "lrn"))
    ratio = min(times["lrn"]) / min(times["dense"])
    # before issue 26 (TensorFlow): 3.7
    assert ratio < 1.8, times
