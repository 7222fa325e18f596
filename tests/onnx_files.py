"""ONNX files for the tests of the zoo and its reader (tests/test_zoo.py,
tests/test_onnx_reader.py, tests/test_onnx_tensors.py).

A tiny zoo-like network, declared the way a builder module declares its zoo
graph, keeps those tests cheap: Conv 3x3 -> Relu -> LRN -> MaxPool ->
Reshape (flatten, its shape a Constant node) -> Gemm -> Softmax (`TINY`,
`tiny_builder`, `tiny_onnx`); `edited` writes it with one edit, and
`rejected` checks that reading it raises a `ValueError` naming the file.
"""

import os

import keras
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from keras_lrn import LocalResponseNormalization
from keras_lrn.applications import _common, _onnx_reader, zoo


def save_onnx(model, path):
    onnx.save(model, str(path))
    return str(path)


def assert_close(actual, reference, rtol=1e-4):
    """Equal to 1e-4 relative to the reference's largest magnitude."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    scale = np.max(np.abs(reference))
    assert scale > 0
    np.testing.assert_allclose(actual, reference, rtol=rtol, atol=rtol * scale)


TINY_LRN = {"size": 3, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}


def tiny_builder(classifier_activation="softmax", name="tiny"):
    inputs = keras.Input((8, 8, 3))
    x = _common.conv(inputs, 4, 3, name="conv1")
    x = LocalResponseNormalization.from_onnx(**TINY_LRN, name="norm1")(x)
    x = keras.layers.MaxPooling2D(2, 2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _common.classifier(x, 2, classifier_activation, 0.01, 0.0, "fc")
    return keras.Model(inputs, x, name=name)


TINY = zoo.ZooNetwork.from_mapping(tiny_builder, {
    "name": "tiny",
    "arguments": {},
    "layers": ({"name": "conv1", "op": "Conv", "weights": (4, 3, 3, 3)},
               {"name": "fc", "op": "Gemm", "weights": (2, 36),
                "flattened_from": (4, 3, 3)}),
    "pools": ({"op": "MaxPool", "kernel": 2, "strides": 2},),
    "lrn": TINY_LRN,
    "lrn_count": 1,
})


def tiny_onnx(seed=0):
    rng = np.random.default_rng(seed)

    def init(name, shape):
        return numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["data", "conv1_w", "conv1_b"], ["c1"],
                         name="conv1", kernel_shape=[3, 3], strides=[1, 1],
                         pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("LRN", ["r1"], ["n1"], name="norm1", **TINY_LRN),
        helper.make_node("MaxPool", ["n1"], ["p1"], name="pool1",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Constant", [], ["flat_shape"], name="shape",
                         value=numpy_helper.from_array(np.array([1, 36], np.int64))),
        helper.make_node("Reshape", ["p1", "flat_shape"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="prob"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("prob", onnx.TensorProto.FLOAT, [1, 2])],
        initializer=[init("conv1_w", (4, 3, 3, 3)), init("conv1_b", (4,)),
                     init("fc_w", (2, 36)), init("fc_b", (2,))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])


def read_verified(path, model=None):
    """What a loader does with the file: read, recognize, verify, and (given
    a Keras model) assign."""
    graph = _onnx_reader.read(path)
    network = zoo.identify(graph, (TINY,))
    zoo.verify(graph, network)
    if model is not None:
        zoo.assign(model, graph, network)
    return graph


def rejected(path, match):
    """The file raises a ValueError that names it and matches `match`."""
    with pytest.raises(ValueError, match=match) as info:
        read_verified(path)
    assert str(info.value).endswith(f"Received: path={os.fspath(path)!r}")
    return str(info.value)


def edited(tmp_path, edit, name="edited.onnx"):
    model = tiny_onnx()
    edit(model.graph)
    return save_onnx(model, tmp_path / name)


def node_named(graph, name):
    return next(n for n in graph.node if n.name == name)


def attribute_named(node, name):
    return next(a for a in node.attribute if a.name == name)


def fake_alexnet():
    """280 KB: AlexNet's fingerprint (5 Conv, 3 Gemm, conv1 96x3x11x11) with
    tiny, wrong weights behind it."""
    rng = np.random.default_rng(0)
    shapes = [(96, 3, 11, 11)] + [(2, 2, 1, 1)] * 4 + [(2, 2)] * 3
    nodes, inits, x = [], [], "data"
    for i, shape in enumerate(shapes):
        op = "Conv" if len(shape) == 4 else "Gemm"
        w, b = f"w{i}", f"b{i}"
        inits += [numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), w),
                  numpy_helper.from_array(np.zeros(shape[0], np.float32), b)]
        strides = {"strides": [4, 4]} if i == 0 else {}  # conv1 is AlexNet's
        nodes.append(helper.make_node(op, [x, w, b], [f"y{i}"], name=f"n{i}",
                                      **strides))
        x = f"y{i}"
    graph = helper.make_graph(
        nodes, "fake",
        [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None)],
        initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])


def shared_conv_file(path, elements, nodes=40, external=None):
    """The issue's amplification files: one stored tensor of `elements`
    float32 values (a 1x1 convolution's weights) named by `nodes` Conv
    nodes, stored in the file or, with `external`, in a sparse file of that
    name beside it (no disk used)."""
    channels = int(np.sqrt(elements))
    dims = (channels, channels, 1, 1)
    if external is None:
        weight = numpy_helper.from_array(np.full(dims, 0.01, np.float32), "w")
    else:
        weight = onnx.TensorProto(name="w", dims=dims,
                                  data_type=onnx.TensorProto.FLOAT,
                                  data_location=onnx.TensorProto.EXTERNAL)
        nbytes = 4 * channels * channels
        for key, value in {"location": external, "length": str(nbytes)}.items():
            weight.external_data.add(key=key, value=value)
        with open(os.path.join(os.path.dirname(path), external), "wb") as f:
            f.truncate(nbytes)
    conv = [helper.make_node("Conv", ["data" if i == 0 else f"y{i - 1}", "w"],
                             [f"y{i}"], name=f"conv{i}") for i in range(nodes)]
    graph = helper.make_graph(
        conv, "shared",
        [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT,
                                       [1, channels, 1, 1])],
        [helper.make_tensor_value_info(f"y{nodes - 1}", onnx.TensorProto.FLOAT,
                                       None)],
        initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    return save_onnx(model, path)
