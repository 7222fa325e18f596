"""keras_lrn/_arguments.py: the argument rules, each checked once.

Every refusal is a `ValueError` (for an input's dtype, `InputDTypeError`,
also a `TypeError`) whose message names the argument and quotes the bad
value ("... Received: name=value"); every accepted value comes back as a
plain Python value.
"""

import types

import keras
import numpy as np
import pytest

from keras_lrn import _arguments


# --- numbers: integer_argument and real_argument -----------------------------

@pytest.mark.parametrize("value", [3, np.int64(3), np.int8(3), np.uint16(3)])
def test_integer_argument_returns_a_python_int(value):
    result = _arguments.integer_argument("size", value, 1)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value", [0, -1, True, np.True_, 3.0, np.float32(3),
                                   "3", None, [3]])
def test_integer_argument_quotes_the_refused_value(value):
    with pytest.raises(ValueError) as info:
        _arguments.integer_argument("size", value, 1)
    message = str(info.value)
    assert message.startswith("Argument `size` must be an integer >= 1")
    assert message.endswith(f"Received: size={value!r}")


def test_integer_argument_minimum_is_inclusive_and_prefixed():
    assert _arguments.integer_argument("depth_radius", 0, 0) == 0
    with pytest.raises(ValueError, match=r"^Framework: Argument `depth_radius`"
                       r" must be an integer >= 0.*depth_radius=-1$"):
        _arguments.integer_argument("depth_radius", -1, 0,
                                    prefix="Framework: ")


@pytest.mark.parametrize("value", [2, 2.5, np.int32(2), np.float16(2.5),
                                   np.float64(0.0)])
def test_real_argument_returns_a_python_float(value):
    result = _arguments.real_argument("alpha", value, 0.0)
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize("value", [-1e-9, float("nan"), float("inf"),
                                   -float("inf"), True, np.False_, "1",
                                   None, complex(1, 0), np.array([1.0])])
def test_real_argument_quotes_the_refused_value(value):
    with pytest.raises(ValueError) as info:
        _arguments.real_argument("alpha", value, 0.0)
    message = str(info.value)
    assert message.startswith("Argument `alpha` must be a finite number >= 0")
    assert message.endswith(f"Received: alpha={value!r}")


def test_real_argument_minimum_excluded_on_request():
    assert _arguments.real_argument("bias", 1e-30, 0.0,
                                    minimum_allowed=False) == 1e-30
    with pytest.raises(ValueError, match=r"finite number > 0.*bias=0\.0$"):
        _arguments.real_argument("bias", 0.0, 0.0, minimum_allowed=False)


# --- validate_arguments ------------------------------------------------------

def test_validate_arguments_returns_plain_values_and_resolves_data_format():
    arguments = _arguments.validate_arguments(
        size=np.int64(3), alpha=np.float32(0.5), beta=1, bias=np.int8(2))
    assert arguments == dict(
        size=3, alpha=0.5, beta=1.0, bias=2.0, mode="across_channels",
        even_window_side="after", implementation="auto", window="box",
        data_format=keras.config.image_data_format(), window_scale=None,
        groups=1, learned=())
    assert [type(arguments[name]) for name in ("size", "alpha", "beta",
                                               "bias")] == [int, float,
                                                            float, float]
    old = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        assert _arguments.validate_arguments()["data_format"] == (
            "channels_first")
    finally:
        keras.config.set_image_data_format(old)


@pytest.mark.parametrize("name, value", [
    ("mode", "across"), ("data_format", "NCHW"), ("even_window_side", "left"),
    ("implementation", "fast"), ("window", "gaussian"), ("mode", None),
    ("window", ["box"]),
])
def test_validate_arguments_lists_the_choices(name, value):
    with pytest.raises(ValueError) as info:
        _arguments.validate_arguments(**{name: value})
    message = str(info.value)
    assert message.startswith(f"Argument `{name}` must be one of (")
    assert message.endswith(f"Received: {name}={value!r}")


def test_validate_arguments_names_the_first_bad_argument():
    with pytest.raises(ValueError, match="Received: size=0$"):
        _arguments.validate_arguments(size=0, alpha=-1.0, mode="x")
    with pytest.raises(ValueError, match=r"Received: alpha=-1\.0$"):
        _arguments.validate_arguments(alpha=-1.0, mode="x")


def test_exponential_window_needs_a_positive_scale_across_channels():
    arguments = _arguments.validate_arguments(window="exponential",
                                              window_scale=np.float32(2.5))
    assert arguments["window_scale"] == 2.5
    assert type(arguments["window_scale"]) is float
    for scale in (None, 0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match=(
                r"^With window='exponential', the window's decay length in "
                rf"channels: Argument `window_scale`.*window_scale={scale!r}$")):
            _arguments.validate_arguments(window="exponential",
                                          window_scale=scale)
    with pytest.raises(ValueError, match="Received: mode='within_channel'$"):
        _arguments.validate_arguments(window="exponential", window_scale=2.0,
                                      mode="within_channel")
    with pytest.raises(ValueError, match=(
            r"only with window='exponential'.*window_scale=2\.0$")):
        _arguments.validate_arguments(window_scale=2.0)


@pytest.mark.parametrize("learnable, window, expected", [
    (False, "box", ()),
    (True, "box", ("alpha", "beta", "bias")),
    (["bias", "alpha"], "box", ("alpha", "bias")),
    (("window_scale", "beta"), "exponential", ("beta", "window_scale")),
])
def test_learned_parameters_in_weight_order(learnable, window, expected):
    assert _arguments.learned_parameters(learnable, window) == expected


@pytest.mark.parametrize("learnable", [[], ["alpha", "alpha"], ["gamma"],
                                       "alpha", 1, None, [True]])
def test_learned_parameters_refuses_other_values(learnable):
    with pytest.raises(ValueError, match=(
            rf"Argument `learnable`.*Received: learnable={learnable!r}$"
            .replace("[", r"\[").replace("]", r"\]").replace("(", r"\("))):
        _arguments.learned_parameters(learnable, "box")


def test_learned_window_scale_needs_the_exponential_window():
    with pytest.raises(ValueError, match="window='box'"):
        _arguments.learned_parameters(["window_scale"], "box")


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_a_learned_logarithm_cannot_start_at_zero(name):
    with pytest.raises(ValueError, match=(
            rf"learned `{name}` is stored as its logarithm.*{name}=0\.0")):
        _arguments.validate_arguments(**{name: 0.0}, learnable=True)
    # fixed, zero is allowed; learned, bias is not a logarithm
    assert _arguments.validate_arguments(**{name: 0.0})[name] == 0.0
    assert _arguments.validate_arguments(
        learnable=["bias"], **{name: 0.0})["learned"] == ("bias",)


@pytest.mark.parametrize("change", [dict(learnable=True),
                                    dict(window="exponential",
                                         window_scale=1.0)])
def test_native_has_no_learned_parameters_or_exponential_window(change):
    with pytest.raises(ValueError, match="implementation='native'"):
        _arguments.validate_arguments(implementation="native", **change)


# --- groups ------------------------------------------------------------------

def test_groups_argument():
    assert _arguments.groups_argument(np.int16(4), "across_channels",
                                      "auto") == 4
    assert _arguments.groups_argument(1, "within_channel", "native") == 1
    with pytest.raises(ValueError, match="groups=2 with mode='within_channel'"):
        _arguments.groups_argument(2, "within_channel", "auto")
    with pytest.raises(ValueError, match="groups=2 with implementation='native'"):
        _arguments.groups_argument(2, "across_channels", "native")
    with pytest.raises(ValueError, match="Received: groups=0$"):
        _arguments.groups_argument(0, "across_channels", "auto")


@pytest.mark.parametrize("shape, data_format", [
    ((2, 4, 4, 6), "channels_last"), ((2, 6, 4, 4), "channels_first"),
    ((2, 4, None), "channels_last")])
def test_groups_that_divide_the_channels_pass(shape, data_format):
    _arguments.validate_groups_divide_channels(shape, 3, data_format)


@pytest.mark.parametrize("shape, data_format", [
    ((2, 4, 4, 8), "channels_last"), ((2, 8, 4, 4), "channels_first")])
def test_groups_that_do_not_divide_the_channels_are_named(shape, data_format):
    with pytest.raises(ValueError, match=(
            rf"8 channels cannot be split into 3 groups. Received: groups=3, "
            rf"input shape={shape!r}".replace("(", r"\(").replace(")", r"\)"))):
        _arguments.validate_groups_divide_channels(shape, 3, data_format)


# --- dtypes, framework keywords, inputs --------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32",
                                   "float64", "mixed_float16",
                                   "mixed_bfloat16"])
def test_float_dtype_policies_pass(dtype):
    _arguments.validate_dtype_policy(keras.dtype_policies.get(dtype), dtype)


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
def test_other_dtype_policies_are_named(dtype):
    policy = keras.dtype_policies.DTypePolicy(dtype)
    with pytest.raises(ValueError, match=rf"Received: dtype='{dtype}'$"):
        _arguments.validate_dtype_policy(policy, dtype)


@pytest.mark.parametrize("dtype, compute", [
    ("float16", "float32"), ("bfloat16", "float32"), ("float32", "float32"),
    ("float64", "float64"), (np.float16, "float32"), (np.float64, "float64")])
def test_half_precision_computes_in_float32(dtype, compute):
    assert _arguments.compute_dtype_of(dtype) == compute


@pytest.mark.parametrize("keyword, converter", [
    ("depth_radius", "from_tensorflow"), ("k", "from_caffe"),
    ("local_size", "from_caffe"), ("norm_region", "from_caffe"),
    ("n", "size=n"), ("radius", "from_tensorflow")])
def test_another_frameworks_keyword_names_its_converter(keyword, converter):
    with pytest.raises(ValueError, match=(
            rf"no argument `{keyword}`.*{converter}.*Received: {keyword}=7$")):
        _arguments.raise_for_convention_keywords({"name": "x", keyword: 7})
    _arguments.raise_for_convention_keywords({"name": "x", "size": 5})


def test_static_shape_needs_a_known_rank():
    known = types.SimpleNamespace(shape=(None, 3, 4))
    assert _arguments.static_shape(known) == (None, 3, 4)
    unknown = types.SimpleNamespace(shape=types.SimpleNamespace(rank=None))
    with pytest.raises(ValueError, match="input of unknown rank"):
        _arguments.static_shape(unknown)


def test_validate_input_refuses_low_ranks_naming_the_shape():
    with pytest.raises(ValueError, match=(
            r"reshape it to \(batch, 1, features\).*input shape=\(2, 8\)$")):
        _arguments.validate_input((2, 8), "float32", "across_channels",
                                  "channels_last")
    with pytest.raises(ValueError) as info:
        _arguments.validate_input((8,), "float32", "across_channels",
                                  "channels_last")
    assert "reshape" not in str(info.value)
    assert str(info.value).endswith("input shape=(8,)")


@pytest.mark.parametrize("shape, data_format, axis", [
    ((2, 4, 4, None), "channels_last", -1),
    ((2, None, 4, 4), "channels_first", 1)])
def test_validate_input_needs_known_channels_across_channels(shape,
                                                             data_format,
                                                             axis):
    with pytest.raises(ValueError, match=rf"axis {axis} for data_format="):
        _arguments.validate_input(shape, "float32", "across_channels",
                                  data_format)
    _arguments.validate_input(shape, "float32", "within_channel", data_format)


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool", "complex64"])
def test_validate_input_refuses_non_float_dtypes(dtype):
    with pytest.raises(_arguments.InputDTypeError,
                       match=rf"Received: input dtype={dtype}$") as info:
        _arguments.validate_input((1, 2, 3), dtype, "across_channels",
                                  "channels_last")
    # either `except` clause catches it
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, ValueError)
