"""Hostile files and odd inputs (issue 10): bounded cost, empty tensors,
hyperparameters checked against the compute dtype, errors that name their
cause, the numeric-argument rule, the overflow limits, and config loaders
fuzzed with random corruptions.

Expected values come from tests/reference.py (float64 NumPy).
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
TENSORFLOW = keras.backend.backend() == "tensorflow"
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


@pytest.mark.skipif(not TENSORFLOW, reason="unknown dimensions of a traced "
                    "tf.function")
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


@pytest.mark.skipif(not TENSORFLOW, reason="tf.function graphs")
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
def test_hyperparameter_outside_the_compute_dtype_raises_at_build(
        name, value, dtype):
    layer = LRN(**{name: value}, dtype=dtype)
    message = re.escape(f"{name}={value!r}")
    with pytest.raises(ValueError, match=message):
        layer.build((None, 4, 4, 8))
    with pytest.raises(ValueError, match=message):
        layer(np.zeros((1, 4, 4, 8), "float32"))


def test_bias_power_that_overflows_raises_naming_bias():
    with pytest.raises(ValueError, match=r"bias=1e-30, beta=2.0"):
        LRN(bias=1e-30, beta=2.0).build((None, 4, 4, 8))
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
    layer = LRN(size=3, alpha=alpha, beta=beta, bias=bias)
    try:
        layer.build((None, 2, 2, 4))
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


@pytest.mark.skipif(not TENSORFLOW, reason="unknown rank in a tf.function")
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
    with pytest.raises(ValueError, match=r"alpha=3e\+38, beta=0.75"):
        LRN(alpha=3e38).build((None, 4, 4, 8))
