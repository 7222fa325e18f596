"""keras_lrn/conventions.py: each framework's spelling of LRN as data, the
two conversions through a row (`to_canonical`, `from_canonical`), the
layer converters' helpers (`layer_arguments`, `caffe_convention`,
`framework_arguments`) and `keras_lrn.ops.convention_arguments`.

Checked against the table of conventions (the project guide's, written out
here again, not read from keras_lrn) and against each framework's own
formula: Caffe's and ONNX's in float64 NumPy (tests/reference.py and below,
NCHW as PyTorch, Caffe and ONNX lay tensors out),
`tf.nn.local_response_normalization` and `torch.nn.LocalResponseNorm` where
installed.
"""

import functools
import sys
import warnings

import numpy as np
import pytest

import keras_lrn
from keras_lrn import conventions
from tests import reference


def _across_nchw(x, size, alpha_per_window, beta, k, before):
    """PyTorch/Caffe/ONNX: alpha / size times the window sum over channels,
    the window [c - before, c + size - 1 - before], zero padded."""
    x = x.astype(np.float64)
    padded = np.pad(x**2, [(0, 0), (before, size - 1 - before), (0, 0), (0, 0)])
    window = sum(padded[:, i:i + x.shape[1]] for i in range(size))
    return x / (k + alpha_per_window / size * window) ** beta


@pytest.mark.parametrize("convention, hyper, before", [
    ("torch", dict(size=5, alpha=5e-4, beta=0.75, k=2.0), 2),
    ("torch", dict(size=4, alpha=1e-2, beta=0.5, k=1.0), 2),   # even: extra element before
    ("onnx", dict(size=4, alpha=1e-2, beta=0.5, bias=1.0), 1),  # even: extra element after
    ("caffe", dict(local_size=3, alpha=1e-2, beta=0.75, k=1.5), 1),
])
def test_matches_the_framework_formula_on_nchw(convention, hyper, before):
    x = np.random.default_rng(0).uniform(0, 10, (2, 7, 3, 4)).astype("float32")
    kwargs = keras_lrn.ops.convention_arguments(convention, data_format="channels_first",
                                                **hyper)
    got = keras_lrn.ops.local_response_normalization(x, **kwargs)
    size = hyper.get("size", hyper.get("local_size"))
    expected = _across_nchw(x, size, hyper["alpha"], hyper["beta"],
                            hyper.get("k", hyper.get("bias")), before)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_same_as_the_layer_converters_and_keras_default_layout():
    assert keras_lrn.ops.convention_arguments("tensorflow", depth_radius=2, alpha=1e-4,
                                              beta=0.75, bias=2.0) == {
        "size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 2.0, "mode": "across_channels"}
    kwargs = keras_lrn.ops.convention_arguments("torch", size=5, alpha=5e-4, k=2.0)
    assert "data_format" not in kwargs  # the op's default: keras.config.image_data_format()
    layer = keras_lrn.LRN.from_torch(5, alpha=5e-4, k=2.0)
    assert (layer.size, layer.alpha, layer.beta, layer.bias) == (
        kwargs["size"], kwargs["alpha"], kwargs["beta"], kwargs["bias"])


@pytest.mark.parametrize("call, message", [
    (dict(convention="pytorch", size=5), "Received: convention='pytorch'"),
    (dict(convention="torch", alpha=1e-4), "needs `size`"),
    (dict(convention="torch", size=5, bias=2.0), "Received: bias=2.0"),
    (dict(convention="caffe", local_size=4), "odd `local_size`"),
    (dict(convention="caffe", norm_region="ACROSS"), "Received: norm_region='ACROSS'"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        keras_lrn.ops.convention_arguments(**call)


# --- to_canonical and from_canonical against the table of conventions ----------

# The table: a layer of window n, alpha per term a, beta b and bias k is,
# in each framework's own arguments (None: the framework cannot express an
# even window).
TABLE = {
    "tensorflow": lambda n, a, b, k: dict(
        depth_radius=(n - 1) // 2, alpha=a, beta=b, bias=k),
    "caffe_across_channels": lambda n, a, b, k: dict(
        local_size=n, alpha=a * n, beta=b, k=k,
        norm_region="ACROSS_CHANNELS"),
    "caffe_within_channel": lambda n, a, b, k: dict(
        local_size=n, alpha=a * n * n, beta=b, k=k,
        norm_region="WITHIN_CHANNEL"),
    "torch": lambda n, a, b, k: dict(size=n, alpha=a * n, beta=b, k=k),
    "onnx": lambda n, a, b, k: dict(size=n, alpha=a * n, beta=b, bias=k),
}
MODE = {"caffe_within_channel": "within_channel"}
# where each framework puts the extra element of an even window (None: odd
# windows only)
EVEN_SIDE = {"tensorflow": None, "caffe_across_channels": None,
             "caffe_within_channel": None, "torch": "before", "onnx": "after"}
WINDOW_ARGUMENT = {"tensorflow": "depth_radius", "torch": "size",
                   "onnx": "size", "caffe_across_channels": "local_size",
                   "caffe_within_channel": "local_size"}


def _cases(seed=7, count=6):
    """Seeded layers: window, alpha per term, beta, bias, for every row
    (Caffe's WITHIN_CHANNEL fixes the bias at 1)."""
    rng = np.random.default_rng(seed)
    for name in TABLE:
        for _ in range(count):
            size = int(rng.integers(1, 10))
            if EVEN_SIDE[name] is None and size % 2 == 0:
                size += 1
            bias = 1.0 if name == "caffe_within_channel" else float(
                rng.uniform(0.5, 3.0))
            yield name, size, float(rng.uniform(1e-5, 1e-2)), float(
                rng.uniform(0.1, 2.0)), bias


@pytest.mark.parametrize("name, size, alpha, beta, bias", list(_cases()))
def test_from_and_to_canonical_follow_the_table(name, size, alpha, beta, bias):
    row = conventions.CONVENTIONS[name]
    mode = MODE.get(name, "across_channels")
    side = EVEN_SIDE[name] or "after"
    expected = TABLE[name](size, alpha, beta, bias)
    got = conventions.from_canonical(row, size, alpha, beta, bias, mode, side)
    assert got.pop("norm_region", None) == expected.pop("norm_region", None)
    assert got == pytest.approx(expected, rel=1e-12)
    window = expected[WINDOW_ARGUMENT[name]]
    bias_argument = "bias" if "bias" in expected else "k"
    canonical = conventions.to_canonical(row, window, expected["alpha"], beta,
                                         expected[bias_argument])
    assert canonical.pop("mode") == mode
    assert canonical.pop("even_window_side", side) == side
    assert canonical == pytest.approx(dict(size=size, alpha=alpha, beta=beta,
                                           bias=bias), rel=1e-12)


def _nchw(seed, shape=(2, 7, 4, 5)):
    return np.random.default_rng(seed).uniform(0, 10, shape)


@pytest.mark.parametrize("name, size", [
    ("caffe_across_channels", 5), ("caffe_across_channels", 3),
    ("caffe_within_channel", 3), ("onnx", 5), ("onnx", 4), ("onnx", 2)])
def test_frameworks_formulas_on_their_arguments_equal_the_canonical_layer(
        name, size):
    alpha, beta, bias = 3e-3, 0.75, 1.0
    x = _nchw(size)
    theirs = TABLE[name](size, alpha, beta, bias)
    if name == "caffe_across_channels":
        framework = reference.caffe_across_channels(
            x, theirs["local_size"], theirs["alpha"], beta, theirs["k"])
    elif name == "caffe_within_channel":
        framework = reference.caffe_within_channel(
            x, theirs["local_size"], theirs["alpha"], beta)
    else:
        framework = reference.onnx_lrn(x, theirs["size"], theirs["alpha"],
                                       beta, theirs["bias"])
    ours = conventions.to_canonical(
        conventions.CONVENTIONS[name], size, theirs["alpha"], beta, bias)
    np.testing.assert_allclose(
        reference.lrn(x, data_format="channels_first", **ours), framework,
        rtol=1e-12)


@pytest.mark.parametrize("size", [5, 4, 1])
def test_torch_local_response_norm_on_its_arguments_equals_the_canonical_layer(
        size):
    torch = pytest.importorskip("torch")
    x = _nchw(10 + size)
    theirs = TABLE["torch"](size, 3e-3, 0.6, 1.5)
    peer = torch.nn.LocalResponseNorm(**theirs)(torch.from_numpy(x)).numpy()
    ours = conventions.to_canonical(conventions.CONVENTIONS["torch"], size,
                                    theirs["alpha"], 0.6, 1.5)
    np.testing.assert_allclose(
        reference.lrn(x, data_format="channels_first", **ours), peer,
        rtol=1e-12)


@pytest.mark.parametrize("depth_radius", [0, 2, 3])
def test_tensorflow_lrn_on_its_arguments_equals_the_canonical_layer(
        depth_radius):
    tf = pytest.importorskip("tensorflow")
    # TensorFlow's NHWC, in float32 (its CPU kernel computes in float32)
    x = np.moveaxis(_nchw(20 + depth_radius), 1, -1).astype(np.float32)
    peer = tf.nn.local_response_normalization(
        x, depth_radius=depth_radius, bias=1.5, alpha=3e-3, beta=0.6).numpy()
    ours = conventions.to_canonical(conventions.CONVENTIONS["tensorflow"],
                                    depth_radius, 3e-3, 0.6, 1.5)
    assert ours["size"] == 2 * depth_radius + 1
    np.testing.assert_allclose(reference.lrn(x, **ours), peer, rtol=1e-5)


@pytest.mark.parametrize("name, window, message", [
    ("tensorflow", -1, "depth_radius.*>= 0.*Received: depth_radius=-1"),
    ("tensorflow", True, "Received: depth_radius=True"),
    ("torch", 0, "Received: size=0"),
    ("onnx", 3.0, r"Received: size=3\.0"),
    ("caffe_across_channels", 4, "odd `local_size`.*Received: local_size=4"),
    ("caffe_within_channel", 2, "odd `local_size`.*Received: local_size=2"),
])
def test_to_canonical_names_the_frameworks_window_argument(name, window,
                                                           message):
    row = conventions.CONVENTIONS[name]
    with pytest.raises(ValueError, match=message) as info:
        conventions.to_canonical(row, window, 1e-4, 0.75, 1.0)
    assert str(info.value).startswith(row.name)


def test_to_canonical_names_bad_reals_with_the_frameworks_bias_name():
    torch_row = conventions.CONVENTIONS["torch"]
    with pytest.raises(ValueError, match=r"Received: k=0\.0"):
        conventions.to_canonical(torch_row, 5, 1e-4, 0.75, 0.0)
    with pytest.raises(ValueError, match=r"Received: alpha=-1e-05"):
        conventions.to_canonical(torch_row, 5, -1e-5, 0.75, 1.0)
    with pytest.raises(ValueError, match="Received: beta=nan"):
        conventions.to_canonical(torch_row, 5, 1e-4, float("nan"), 1.0)


def test_caffe_within_channel_warns_and_keeps_its_fixed_k():
    row = conventions.CONVENTIONS["caffe_within_channel"]
    with pytest.warns(UserWarning, match=r"fixes k=1\.0.*Received: k=2\.0"):
        arguments = conventions.to_canonical(row, 3, 9e-4, 0.75, 2.0)
    assert arguments["bias"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conventions.to_canonical(row, 3, 9e-4, 0.75, 1.0)


@pytest.mark.parametrize("convert", [
    functools.partial(
        conventions.to_canonical,
        conventions.CONVENTIONS["caffe_within_channel"], 3, 9e-4, 0.75, 2.0),
    functools.partial(
        conventions.convention_arguments, "caffe", local_size=3, alpha=9e-4,
        k=2.0, norm_region="WITHIN_CHANNEL"),
    functools.partial(
        keras_lrn.LocalResponseNormalization.from_caffe, local_size=3,
        alpha=9e-4, k=2.0, norm_region="WITHIN_CHANNEL"),
], ids=["to_canonical", "convention_arguments", "from_caffe"])
def test_fixed_bias_warning_names_the_callers_line(convert):
    """The warning points at the line that passed the ignored k, however
    many of the package's functions the call went through."""
    with pytest.warns(UserWarning, match="fixes k=1.0") as record:
        line = sys._getframe().f_lineno + 1
        convert()
    assert [(w.filename, w.lineno) for w in record] == [(__file__, line)]


@pytest.mark.parametrize("name, layer, message", [
    ("tensorflow", dict(size=4, even_window_side="after"), "only odd sizes"),
    ("torch", dict(size=4, even_window_side="after"),
     "even_window_side='before'"),
    ("onnx", dict(size=4, even_window_side="before"),
     "even_window_side='after'"),
    ("onnx", dict(mode="within_channel"), "Received: mode='within_channel'"),
    ("caffe_within_channel", dict(mode="within_channel", bias=2.0),
     r"fixed at 1\.0.*Received: bias=2\.0"),
])
def test_from_canonical_refuses_what_the_framework_cannot_express(
        name, layer, message):
    layer = dict(dict(size=5, alpha=1e-4, beta=0.75, bias=1.0,
                      mode="across_channels", even_window_side="after"),
                 **layer)
    row = conventions.CONVENTIONS[name]
    with pytest.raises(ValueError, match=message) as info:
        conventions.from_canonical(row, **layer)
    assert str(info.value).startswith(f"{row.name} cannot express this layer")


def test_the_converters_arguments_come_from_keras_lrn_conventions():
    # the guide's table: PyTorch divides alpha by the window and puts an even
    # window's extra element before the centre; Caffe WITHIN_CHANNEL divides
    # by the box's area; TensorFlow's window is 2 * depth_radius + 1
    assert conventions.layer_arguments(
        "torch", 4, 8e-4, 0.5, 3.0, {"name": "lrn_b"}) == dict(
            size=4, alpha=pytest.approx(2e-4), beta=0.5, bias=3.0,
            mode="across_channels", even_window_side="before", name="lrn_b")
    assert conventions.layer_arguments(
        "tensorflow", 2, 1e-4, 0.75, 2.0, {}) == dict(
            size=5, alpha=1e-4, beta=0.75, bias=2.0, mode="across_channels")
    with pytest.raises(ValueError, match=r"\['alpha', 'size'\] are set by "
                                         r"the converter from ONNX LRN"):
        conventions.layer_arguments("onnx", 3, 1e-4, 0.75, 1.0,
                                    {"size": 5, "alpha": 1.0})
    assert conventions.caffe_convention("WITHIN_CHANNEL") == (
        "caffe_within_channel")
    assert conventions.layer_arguments(
        conventions.caffe_convention("WITHIN_CHANNEL"), 3, 9e-4, 0.75, 1.0,
        {})["alpha"] == pytest.approx(1e-4)
    for region in ("within_channel", None):
        with pytest.raises(ValueError, match=f"norm_region={region!r}"):
            conventions.caffe_convention(region)


def test_framework_arguments_refuse_what_no_framework_computes():
    assert conventions.framework_arguments(
        "torch", keras_lrn.LRN(size=3, alpha=1e-4, bias=1.5)) == pytest.approx(
            dict(size=3, alpha=3e-4, beta=0.75, k=1.5))
    for layer, match in (
            (keras_lrn.LRN(learnable=("beta",)), r"learnable=\['beta'\], window='box'"),
            (keras_lrn.LRN(window="exponential", window_scale=2.0),
             "window='exponential'"),
            (keras_lrn.LRN(groups=2), "groups=2")):
        with pytest.raises(ValueError, match=match):
            conventions.framework_arguments("onnx", layer)
