"""keras_lrn's outputs against the float64 formula and against real peers:
PyTorch's local_response_norm, onnxruntime's LRN, TensorFlow's native op and
Caffe's formulas, each reached through its converter."""

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

RTOL = 1e-5


def random_input(rng, shape, scale=60.0):
    """Activations large enough that alpha * window_sum matters."""
    return rng.uniform(-scale, scale, shape).astype("float32")


def assert_close(actual, expected, rtol=RTOL):
    actual = keras.ops.convert_to_numpy(actual).astype(np.float64)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


def nchw(x):
    return np.moveaxis(x, -1, 1)


SHAPES = {
    3: (2, 9, 7),
    4: (2, 5, 6, 7),
    5: (1, 4, 3, 5, 6),
}


@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank", [3, 4, 5])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 11])
def test_matches_float64_formula(rng, mode, data_format, rank, size):
    # Sizes 8 and 11 exceed the 7 channels (and every spatial length of the
    # rank-4 and rank-5 shapes): the window reaches past both edges.
    shape = SHAPES[rank]
    x = random_input(rng, shape)
    if data_format == "channels_first":
        x = np.moveaxis(x, -1, 1).copy()
    kwargs = dict(size=size, alpha=3e-4, beta=0.75, bias=1.5, mode=mode,
                  data_format=data_format)
    expected = reference.lrn(x, **kwargs)
    assert_close(keras_lrn.ops.local_response_normalization(x, **kwargs),
                 expected)
    assert_close(keras_lrn.LRN(**kwargs)(x), expected)


@pytest.mark.parametrize("mode", ["across_channels", "within_channel"])
@pytest.mark.parametrize("size", [2, 4, 6])
def test_even_window_side_before_matches_formula(rng, mode, size):
    x = random_input(rng, (2, 6, 5, 7))
    kwargs = dict(size=size, alpha=1e-3, beta=0.5, bias=1.0, mode=mode,
                  even_window_side="before")
    assert_close(keras_lrn.ops.local_response_normalization(x, **kwargs),
                 reference.lrn(x, **kwargs))
    # and the side matters: "after" gives other numbers
    after = reference.lrn(x, **{**kwargs, "even_window_side": "after"})
    assert not np.allclose(reference.lrn(x, **kwargs), after, rtol=1e-3)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.75, 1.0, 0.6, 1.5, 2.0])
def test_every_power_path_matches_formula(rng, beta):
    # 0.5, 0.75 and 1 have dedicated square-root/reciprocal paths.
    x = random_input(rng, (2, 4, 4, 9))
    for mode in ("across_channels", "within_channel"):
        kwargs = dict(size=5, alpha=1e-3, beta=beta, bias=2.0, mode=mode)
        assert_close(keras_lrn.ops.local_response_normalization(x, **kwargs),
                     reference.lrn(x, **kwargs))


def test_defaults_are_alexnet(rng):
    x = random_input(rng, (1, 6, 6, 12))
    expected = reference.lrn(x, size=5, alpha=1e-4, beta=0.75, bias=2.0)
    assert_close(keras_lrn.LocalResponseNormalization()(x), expected)
    assert_close(keras_lrn.ops.local_response_normalization(x), expected)


# --- PyTorch --------------------------------------------------------------


def _torch():
    return pytest.importorskip(
        "torch", reason="needs the package 'torch' (PyTorch, the peer): pip "
        "install torch --index-url https://download.pytorch.org/whl/cpu")


@pytest.mark.parametrize("rank", [3, 4, 5])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9, 12])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_from_torch_matches_pytorch(rng, rank, size, data_format):
    torch = _torch()
    x = random_input(rng, SHAPES[rank][:-1] + (9,))
    x_ncx = np.moveaxis(x, -1, 1).copy()
    alpha, beta, k = 2e-3, 0.75, 1.5
    expected = torch.nn.functional.local_response_norm(
        torch.from_numpy(x_ncx).double(), size, alpha=alpha, beta=beta, k=k
    ).numpy()
    layer = keras_lrn.LRN.from_torch(size, alpha=alpha, beta=beta, k=k,
                                     data_format=data_format)
    actual = layer(x_ncx if data_format == "channels_first" else x)
    if data_format == "channels_last":
        actual = np.moveaxis(keras.ops.convert_to_numpy(actual), -1, 1)
    assert_close(actual, expected)


def test_torch_module_and_float32_agree_too(rng):
    torch = _torch()
    x = random_input(rng, (2, 10, 6, 6))
    module = torch.nn.LocalResponseNorm(4, alpha=1e-2, beta=0.6, k=2.0)
    expected = module(torch.from_numpy(x).double()).numpy()
    layer = keras_lrn.LRN.from_torch(**keras_lrn.LRN.from_torch(
        4, alpha=1e-2, beta=0.6, k=2.0).to_torch(),
        data_format="channels_first")
    assert_close(layer(x), expected)


# --- ONNX -----------------------------------------------------------------

def _onnxruntime_lrn(x_nchw, size, alpha, beta, bias):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha,
                            beta=beta, bias=bias)
    graph = helper.make_graph(
        [node], "lrn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                       list(x_nchw.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                       list(x_nchw.shape))],
    )
    model = helper.make_model(graph,
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x_nchw})[0]


@pytest.mark.parametrize("size", [1, 3, 5, 7, 13])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_from_onnx_matches_onnxruntime(rng, size, data_format):
    x = random_input(rng, (2, 11, 5, 6))  # NCHW
    alpha, beta, bias = 1e-3, 0.75, 2.0
    expected = _onnxruntime_lrn(x, size, alpha, beta, bias)
    # onnxruntime computes in float32: check it against the formula first.
    np.testing.assert_allclose(
        expected, reference.onnx_lrn(x, size, alpha, beta, bias), rtol=RTOL)
    layer = keras_lrn.LRN.from_onnx(size, alpha=alpha, beta=beta, bias=bias,
                                    data_format=data_format)
    if data_format == "channels_first":
        actual = keras.ops.convert_to_numpy(layer(x))
    else:
        actual = nchw(keras.ops.convert_to_numpy(layer(np.moveaxis(x, 1, -1))))
    np.testing.assert_allclose(actual, expected, rtol=RTOL)


@pytest.mark.parametrize("rank", [3, 4, 5])
@pytest.mark.parametrize("size", [2, 4, 5, 10])
def test_from_onnx_matches_onnx_formula_where_onnxruntime_cannot(
    rng, rank, size
):
    # onnxruntime's LRN runs only 4-D float32 odd sizes; the ONNX formula
    # (floor before, ceil after) covers the rest.
    x = random_input(rng, SHAPES[rank][:1] + (8,) + SHAPES[rank][1:-1])
    alpha, beta, bias = 5e-3, 0.75, 1.0
    layer = keras_lrn.LRN.from_onnx(size, alpha=alpha, beta=beta, bias=bias,
                                    data_format="channels_first")
    assert_close(layer(x), reference.onnx_lrn(x, size, alpha, beta, bias))


# --- Caffe ----------------------------------------------------------------

@pytest.mark.parametrize("local_size", [1, 3, 5, 7])
def test_from_caffe_across_channels_matches_caffe_formula(rng, local_size):
    x = random_input(rng, (2, 9, 4, 5))
    alpha, beta, k = 1e-4, 0.75, 1.0  # bvlc_alexnet's prototxt
    layer = keras_lrn.LRN.from_caffe(local_size, alpha, beta, k,
                                     data_format="channels_first")
    assert_close(layer(x),
                 reference.caffe_across_channels(x, local_size, alpha, beta, k))


@pytest.mark.parametrize("local_size", [1, 3, 5])
def test_from_caffe_within_channel_matches_caffe_formula(rng, local_size):
    x = random_input(rng, (2, 3, 7, 6))
    alpha, beta = 5e-3, 0.75
    layer = keras_lrn.LRN.from_caffe(local_size, alpha, beta,
                                     norm_region="WITHIN_CHANNEL",
                                     data_format="channels_first")
    assert_close(layer(x),
                 reference.caffe_within_channel(x, local_size, alpha, beta))


# --- TensorFlow's native op -----------------------------------------------

@pytest.mark.parametrize("depth_radius", [0, 1, 2, 5])
def test_from_tensorflow_matches_native_op(rng, depth_radius):
    tf = pytest.importorskip("tensorflow")
    x = random_input(rng, (2, 5, 6, 13))
    kwargs = dict(bias=1.0, alpha=1e-3, beta=0.5)
    expected = tf.nn.local_response_normalization(
        x, depth_radius=depth_radius, **kwargs).numpy()
    np.testing.assert_allclose(
        expected,
        reference.lrn(x, 2 * depth_radius + 1, kwargs["alpha"],
                      kwargs["beta"], kwargs["bias"]),
        rtol=RTOL)
    layer = keras_lrn.LRN.from_tensorflow(depth_radius, **kwargs,
                                          data_format="channels_last")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)),
                               expected, rtol=RTOL)
