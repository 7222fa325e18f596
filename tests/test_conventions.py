"""keras_lrn.ops.convention_arguments: another framework's hyperparameters
for the functional op, checked against each framework's formula written
here in float64 NumPy (NCHW, as PyTorch, Caffe and ONNX lay tensors out)."""

import numpy as np
import pytest

import keras_lrn


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
