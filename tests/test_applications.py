"""keras_lrn/applications/__init__.py: the package's wiring, across its
networks (each network's own architecture is tested in its module's test
module: tests/test_alexnet.py, test_zfnet.py, test_googlenet.py).

Every application's LRN hyperparameters are written here from the papers
and the zoo files, not read from keras_lrn, and checked against the float64
formula (tests/reference.py) and the onnx wheel's copies of the zoo graphs.
"""


import numpy as np
import pytest

import keras

from keras_lrn import LocalResponseNormalization
from tests import reference
from tests.architecture import feature_maps, layers_of_type


def _lrn_layers(model):
    return layers_of_type(model, LocalResponseNormalization)


# --------------------------------------------------------------------------
# Every application's LRN hyperparameters, from the papers and zoo files
# --------------------------------------------------------------------------
# (n, alpha per term, beta, k) of b = a / (k + alpha * sum_{n} a^2) ** beta,
# written from the sources (not read from keras_lrn):
PUBLISHED_LRN = {
    # Krizhevsky et al. 2012, Sec. 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75
    ("AlexNet", "original"): (5, 1e-4, 0.75, 2.0),
    # Caffe's bvlc_reference_caffenet train_val.prototxt: local_size 5,
    # alpha 1e-4 (Caffe divides it by local_size), beta 0.75, k 1
    ("AlexNet", "caffenet"): (5, 2e-5, 0.75, 1.0),
    # the ONNX model zoo's bvlcalexnet: LRN size 5, alpha 1e-4 (ONNX divides
    # it by size), beta 0.75, bias 1
    ("AlexNet", "bvlc"): (5, 2e-5, 0.75, 1.0),
    # Zeiler & Fergus 2013 give no numbers: the AlexNet paper's
    ("ZFNet", "paper"): (5, 1e-4, 0.75, 2.0),
    # the ONNX model zoo's zfnet512: size 5, alpha 5e-4, beta 0.75, bias 2
    ("ZFNet", "zfnet512"): (5, 1e-4, 0.75, 2.0),
    # the ONNX model zoo's googlenet (inception_v1): size 5, alpha 1e-4,
    # beta 0.75, bias 1
    ("GoogLeNet", None): (5, 2e-5, 0.75, 1.0),
}
# the zoo files' ONNX attributes (size, alpha, beta, bias), as the onnx
# wheel's copies of their graphs hold them
ZOO_FILE_LRN = {("AlexNet", "bvlc"): ("light_bvlc_alexnet.onnx", 5, 1e-4),
                ("ZFNet", "zfnet512"): ("light_zfnet512.onnx", 5, 5e-4),
                ("GoogLeNet", None): ("light_inception_v1.onnx", 5, 1e-4)}


def _application(name, variant, **kwargs):
    from keras_lrn import applications

    builder = getattr(applications, name)
    if variant is not None:
        kwargs["variant"] = variant
    return builder(input_shape=(67, 67, 3), classes=10, **kwargs)


@pytest.mark.parametrize("name, variant", list(PUBLISHED_LRN))
def test_every_application_has_its_published_lrn(name, variant):
    size, alpha, beta, bias = PUBLISHED_LRN[name, variant]
    norms = _lrn_layers(_application(name, variant))
    assert len(norms) == 2
    x = feature_maps(channels=8, seed=3).astype("float64") * 3.0
    for layer in norms:
        # the original normalizes per GPU tower (groups=2), the others across
        # all channels: the formula run once per group
        assert layer.groups == (2 if (name, variant) == ("AlexNet", "original")
                                else 1)
        reference_output = np.concatenate(
            [reference.lrn(part, size=size, alpha=alpha, beta=beta, bias=bias)
             for part in np.split(x, layer.groups, axis=-1)], axis=-1)
        assert layer.size == size and layer.mode == "across_channels"
        assert layer.alpha == pytest.approx(alpha, rel=1e-6)
        assert layer.beta == pytest.approx(beta, rel=1e-6)
        assert layer.bias == pytest.approx(bias, rel=1e-6)
        fresh = type(layer).from_config(layer.get_config())
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(fresh(x.astype("float32"))),
            reference_output, rtol=1e-5)


@pytest.mark.parametrize("key", list(ZOO_FILE_LRN))
def test_zoo_lrn_equals_the_zoo_files_attributes(key):
    onnx = pytest.importorskip("onnx", reason="needs the package 'onnx' "
                               "(its wheel's copies of the zoo graphs; the "
                               "[test] extra)")
    import os

    light, size, onnx_alpha = ZOO_FILE_LRN[key]
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test",
                        "data", "light", light)
    nodes = [n for n in onnx.load(path).graph.node if n.op_type == "LRN"]
    published = PUBLISHED_LRN[key]
    for node in nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a)
                      for a in node.attribute}
        assert attributes["size"] == size == published[0]
        assert attributes["alpha"] == pytest.approx(onnx_alpha, rel=1e-6)
        # ONNX divides alpha by size: the per-term alpha above
        assert attributes["alpha"] / size == pytest.approx(published[1],
                                                           rel=1e-6)
        assert (attributes["beta"], attributes["bias"]) == pytest.approx(
            published[2:], rel=1e-6)
    for layer in _lrn_layers(_application(*key)):
        assert layer.to_onnx() == pytest.approx(
            {"size": size, "alpha": onnx_alpha, "beta": published[2],
             "bias": published[3]}, rel=1e-6)


@pytest.mark.parametrize("variant", ["original", "caffenet", "bvlc"])
def test_alexnet_learned_lrn_starts_at_the_variants_values(variant):
    size, alpha, beta, bias = PUBLISHED_LRN["AlexNet", variant]
    # Miller, Chung & Miller (2022)'s exponential window, its decay length
    # lambda chosen so that the window's total weight, sum over every offset
    # d of exp(-|d| / lambda) = coth(1 / (2 lambda)), starts at the box's
    # n = 5 channels: lambda = 2.5 gives coth(0.2) = 5.07
    window_scale = 2.5
    assert 1 / np.tanh(1 / (2 * window_scale)) == pytest.approx(size, rel=0.02)
    norms = _lrn_layers(_application("AlexNet", variant,
                                     normalization="learned"))
    assert len(norms) == 2
    for layer in norms:
        assert layer.window == "exponential"
        assert layer.window_scale == window_scale
        assert sorted(w.name for w in layer.trainable_weights) == sorted(
            ["alpha", "beta", "bias", "window_scale"])
        assert layer.alpha == pytest.approx(alpha, rel=1e-6)
        assert (layer.beta, layer.bias) == pytest.approx((beta, bias))


def test_the_public_builders_are_wrapped_with_their_zoo_mappings():
    from keras_lrn import applications
    from keras_lrn.applications import alexnet, googlenet, zfnet

    assert sorted(applications.__all__) == sorted(
        ["AlexNet", "GoogLeNet", "ZFNet", "ZOO_NETWORKS",
         "decode_predictions", "from_onnx_zoo", "preprocess_input"])
    for builder, module in ((applications.AlexNet, alexnet),
                            (applications.ZFNet, zfnet),
                            (applications.GoogLeNet, googlenet)):
        # the module's builder, wrapped with the module's zoo mapping
        assert builder.__wrapped__ is getattr(module, builder.__name__)
        assert builder.zoo_network.name == module.ZOO["name"]
        assert builder.zoo_network in applications.ZOO_NETWORKS
    assert len(applications.ZOO_NETWORKS) == 3
