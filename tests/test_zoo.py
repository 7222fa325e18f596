"""Tests for loading the ONNX model zoo's LRN networks (keras_lrn.applications.zoo).

The reference is onnxruntime running the zoo's graph on the same input. The
real zoo files are not downloaded: the onnx wheel ships the zoo's graphs with
their weights stripped (`onnx/backend/test/data/light/`, each weight a
`ConstantOfShape` node). `_zoo_file` turns those nodes into ordinary
initializers holding random He-scaled weights, so that with 0-255,
mean-subtracted inputs the activations reach the range where LRN matters,
and saves the result as a zoo-style file.

The reader below the zoo mapping (`_onnx_reader`, `_onnx_tensors`) is
tested here too, through the doors users take (`from_onnx_zoo`, a builder's
`weights`); the structure limits checked before parsing (`_onnx_wire`) are
tested in tests/test_onnx_wire.py.
"""

import dataclasses
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

import keras

from keras_lrn import LocalResponseNormalization
from keras_lrn import applications
from keras_lrn.applications import _common, _onnx_reader, _onnx_tensors, zoo
from keras_lrn.applications import (ZOO_NETWORKS, AlexNet, GoogLeNet, ZFNet,
                                    decode_predictions, from_onnx_zoo,
                                    preprocess_input)

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

# The package's one table of zoo networks, by name (each with its builder).
NETWORKS = {network.name: network for network in ZOO_NETWORKS}
# Test data only: the weight-stripped graph the onnx wheel ships for each.
LIGHT_FILES = {"bvlc_alexnet": "light_bvlc_alexnet.onnx",
               "zfnet512": "light_zfnet512.onnx",
               "googlenet": "light_inception_v1.onnx"}


def test_every_zoo_network_has_a_test_graph():
    assert sorted(LIGHT_FILES) == sorted(NETWORKS)


def _zoo_model(light_name, opset=None, seed=0):
    """The light graph with random initializers in place of its ConstantOfShape weights."""
    model = onnx.load(os.path.join(LIGHT, light_name))
    if opset is not None:
        model = onnx.version_converter.convert_version(model, opset)
    rng = np.random.default_rng(seed)
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    shape_names = set()
    gemms = [n for n in graph.node if n.op_type == "Gemm"]
    classifier = {gemms[-1].input[1]} | {  # GoogLeNet reshapes its weights
        n.input[0] for n in graph.node if n.output[0] == gemms[-1].input[1]
    } if gemms else set()
    new_inits, kept_nodes = [], []
    for node in graph.node:
        if node.op_type != "ConstantOfShape":
            kept_nodes.append(node)
            continue
        shape = tuple(int(d) for d in inits[node.input[0]])
        shape_names.add(node.input[0])
        if len(shape) == 1:  # biases
            value = rng.uniform(-1.0, 1.0, shape)
        else:  # He-scaled: activations keep the 0-255 inputs' magnitude
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
            if node.output[0] in classifier:  # logits of order 1: no saturation
                value *= 0.05
        new_inits.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
    del graph.node[:]
    graph.node.extend(kept_nodes)
    kept = [t for t in graph.initializer if t.name not in shape_names]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    inputs = [i for i in graph.input if i.name not in shape_names]
    inputs += [helper.make_tensor_value_info(t.name, onnx.TensorProto.FLOAT, t.dims)
               for t in new_inits]  # IR 3: initializers are graph inputs
    del graph.input[:]
    graph.input.extend(inputs)
    return model


def _save(model, path):
    onnx.save(model, str(path))
    return str(path)


def _softmax_input_and_first_lrn(model):
    nodes = model.graph.node
    logits = next(n.input[0] for n in nodes if n.op_type == "Softmax")
    lrn = next(n for n in nodes if n.op_type == "LRN")
    return logits, lrn.input[0], lrn.output[0]


def _run_onnxruntime(path, images_nhwc):
    """The file's softmax, logits, and first LRN's input and output, per image."""
    model = onnx.load(path)
    extra = _softmax_input_and_first_lrn(model)
    for name in extra:
        model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    data = session.get_inputs()[0].name
    outs = [session.run(None, {data: img.transpose(2, 0, 1)[None]}) for img in images_nhwc]
    return [np.concatenate([o[i] for o in outs]) for i in range(4)]


def _images(seed=1):
    rgb = np.random.default_rng(seed).uniform(0.0, 255.0, (2, 224, 224, 3))
    return preprocess_input(rgb.astype(np.float32))


def _close(actual, reference, rtol=1e-4):
    """Equal to 1e-4 relative to the reference's largest magnitude."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    scale = np.max(np.abs(reference))
    assert scale > 0
    np.testing.assert_allclose(actual, reference, rtol=rtol, atol=rtol * scale)


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    cache = {}

    def get(network, opset=None):
        key = (network, opset)
        if key not in cache:
            model = _zoo_model(LIGHT_FILES[network], opset)
            path = _save(model, folder / f"{network}-{opset or 9}.onnx")
            cache[key] = (path, _run_onnxruntime(path, _images()))
        return cache[key]

    return get


# --------------------------------------------------------------------------
# End to end against onnxruntime
# --------------------------------------------------------------------------

@pytest.mark.parametrize("network", list(NETWORKS))
def test_from_onnx_zoo_matches_onnxruntime(zoo_files, network):
    path, (probs, logits, lrn_in, lrn_out) = zoo_files(network)
    # The random weights put the first LRN where it matters: its divisor
    # (input / output) ** (1 / beta) is well above the bias.
    divisor = (lrn_in[lrn_in > 1.0] / lrn_out[lrn_in > 1.0]) ** (1 / 0.75)
    bias = 2.0 if network == "zfnet512" else 1.0
    assert np.median(divisor) > 1.5 * bias

    model = from_onnx_zoo(path)
    assert model.name == NETWORKS[network].builder().name
    images = _images()
    _close(model.predict(images, verbose=0), probs)
    logit_model = from_onnx_zoo(path, classifier_activation=None)
    _close(logit_model.predict(images, verbose=0), logits)
    # the softmax is not saturated, so the probabilities check the logits too
    assert probs.max() < 0.999
    lrn = [layer for layer in model.layers
           if isinstance(layer, LocalResponseNormalization)][0]
    first_lrn = keras.Model(model.input, lrn.output).predict(images, verbose=0)
    _close(first_lrn, lrn_out.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("network", list(NETWORKS))
def test_builder_with_weights_path_matches_onnxruntime(zoo_files, network):
    path, (_, logits, _, _) = zoo_files(network)
    model = NETWORKS[network].builder(weights=path, classifier_activation=None)
    _close(model.predict(_images(), verbose=0), logits)


def test_lrn_is_what_makes_the_match(zoo_files):
    """Without the LRN layers (same weights) the output is far off: the
    comparison above can fail."""
    path, (_, logits, _, _) = zoo_files("bvlc_alexnet")
    model = AlexNet(variant="bvlc", weights=path, normalization="none",
                    classifier_activation=None)
    out = model.predict(_images(), verbose=0)
    assert np.max(np.abs(out - logits)) > 0.1 * np.max(np.abs(logits))


@pytest.mark.parametrize("opset", [10, 11, 12])
def test_opsets_10_to_12_load(zoo_files, opset):
    path, (_, logits, _, _) = zoo_files("googlenet", opset)
    assert onnx.load(path).opset_import[0].version == opset
    model = from_onnx_zoo(path, classifier_activation=None)
    _close(model.predict(_images(), verbose=0), logits)


def test_towers_load_the_grouped_weights(zoo_files):
    path, (_, logits, _, _) = zoo_files("bvlc_alexnet")
    model = AlexNet(variant="bvlc", weights=path, group_implementation="towers",
                    classifier_activation=None)
    _close(model.predict(_images(), verbose=0), logits)


def test_headless_model_takes_the_convolutional_weights(zoo_files):
    path, (_, _, _, lrn_out) = zoo_files("googlenet")
    model = GoogLeNet(weights=path, include_top=False, pooling="avg")
    assert model.output.shape == (None, 1024)
    lrn = keras.Model(model.input, model.get_layer("pool1_norm1").output)
    _close(lrn.predict(_images(), verbose=0), lrn_out.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("network", ["bvlc_alexnet", "googlenet"])
def test_saves_and_loads_as_keras_file(zoo_files, network, tmp_path):
    path, (probs, _, _, _) = zoo_files(network)
    model = from_onnx_zoo(path)
    model.save(tmp_path / "zoo.keras")
    restored = keras.models.load_model(tmp_path / "zoo.keras")
    _close(restored.predict(_images(), verbose=0), probs)


# --------------------------------------------------------------------------
# Clear errors
# --------------------------------------------------------------------------

def test_quantized_file_is_rejected(tmp_path):
    # The zoo's -int8 files store int8 weights and dequantize them (QDQ).
    model = _zoo_model("light_inception_v1.onnx")
    graph = model.graph
    name = "conv1/7x7_s2_w_0"
    weight = next(t for t in graph.initializer if t.name == name)
    q = (numpy_helper.to_array(weight) * 100).round().astype(np.int8)
    graph.initializer.remove(weight)
    graph.initializer.extend([
        numpy_helper.from_array(q, name + "_quantized"),
        numpy_helper.from_array(np.array(0.01, np.float32), name + "_scale"),
        numpy_helper.from_array(np.array(0, np.int8), name + "_zero_point"),
    ])
    graph.node.insert(0, helper.make_node(
        "DequantizeLinear",
        [name + "_quantized", name + "_scale", name + "_zero_point"], [name]))
    model.opset_import[0].version = 12
    path = _save(model, tmp_path / "googlenet-12-int8.onnx")
    with pytest.raises(ValueError, match=r"quantized \(int8\)"):
        from_onnx_zoo(path)


@pytest.mark.parametrize("opset", [8, 13])
def test_other_opsets_are_rejected(tmp_path, opset):
    model = _zoo_model("light_inception_v1.onnx")
    model.opset_import[0].version = opset
    with pytest.raises(ValueError, match=f"opset {opset}"):
        from_onnx_zoo(_save(model, tmp_path / "z.onnx"))


def test_other_graphs_are_rejected(tmp_path):
    path = _save(_zoo_model("light_squeezenet.onnx"), tmp_path / "squeezenet.onnx")
    with pytest.raises(ValueError, match="not one of the ONNX model zoo networks"):
        from_onnx_zoo(path)


def test_weight_stripped_light_file_is_rejected():
    with pytest.raises(ValueError, match="computed by the graph"):
        from_onnx_zoo(os.path.join(LIGHT, "light_bvlc_alexnet.onnx"))


def test_changed_lrn_attributes_are_rejected(tmp_path):
    model = _zoo_model("light_inception_v1.onnx")
    lrn = next(n for n in model.graph.node if n.op_type == "LRN")
    next(a for a in lrn.attribute if a.name == "alpha").f = 1e-3
    with pytest.raises(ValueError, match="LRN attributes"):
        from_onnx_zoo(_save(model, tmp_path / "g.onnx"))


def test_missing_and_non_onnx_files_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        from_onnx_zoo(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf \xff\xfe")
    with pytest.raises(ValueError, match="not a readable ONNX file"):
        from_onnx_zoo(tmp_path / "junk.onnx")


def test_builder_rejects_the_wrong_network_and_variant(tmp_path):
    path = _save(_zoo_model("light_inception_v1.onnx"), tmp_path / "googlenet-9.onnx")
    with pytest.raises(ValueError, match="not the model zoo's bvlc_alexnet"):
        AlexNet(variant="bvlc", weights=path)
    with pytest.raises(ValueError, match="variant='bvlc'"):
        AlexNet(weights=path)
    with pytest.raises(ValueError, match="variant='zfnet512'"):
        ZFNet(weights=path)
    with pytest.raises(ValueError, match="batchnorm"):
        GoogLeNet(weights=path, normalization="batchnorm")
    with pytest.raises(ValueError, match="input_shape"):
        GoogLeNet(weights=path, classes=10)


def test_builders_load_zoo_files_only_through_the_package(tmp_path):
    """The leaf builder reads no ONNX; the package's builder is the leaf
    (same name, signature, docstring) wrapped with its zoo mapping, and
    finds `weights` wherever it is passed."""
    from keras_lrn.applications import alexnet
    path = str(tmp_path / "bvlcalexnet-12.onnx")
    with pytest.raises(ValueError, match="keras_lrn.applications") as info:
        alexnet.AlexNet(variant="bvlc", weights=path)
    assert str(info.value).endswith(f"Received: weights={path!r}")
    assert AlexNet.__wrapped__ is alexnet.AlexNet
    assert AlexNet.__doc__ == alexnet.AlexNet.__doc__
    assert AlexNet.__name__ == "AlexNet"
    # weights passed by position, as a PathLike, in upper case
    with pytest.raises(ValueError, match="variant='bvlc'.*variant='original'"):
        AlexNet(True, path)
    with pytest.raises(ValueError, match="not found"):
        AlexNet(variant="bvlc", weights=tmp_path / "ABSENT.ONNX")


def test_zoo_mappings_are_checked():
    with pytest.raises(ValueError, match="'Conv' or 'Gemm'"):
        zoo.ZooNetwork.from_mapping(_tiny_builder, dict(
            name="t", arguments={}, pools=(), lrn=TINY_LRN, lrn_count=1,
            layers=({"name": "fc", "op": "MatMul", "weights": (2, 36)},)))
    with pytest.raises(ValueError, match="keys"):
        zoo.ZooNetwork.from_mapping(_tiny_builder, dict(
            name="t", arguments={}, pools=(), lrn=TINY_LRN, lrn_count=1,
            layers=({"name": "c", "op": "Conv", "weights": (4, 3, 3, 3),
                     "dilations": 2},)))
    with pytest.raises(ValueError, match="keys"):
        zoo.ZooNetwork.from_mapping(_tiny_builder, {"name": "t"})


# --------------------------------------------------------------------------
# The zoo architectures and the Caffe conventions
# --------------------------------------------------------------------------

def test_zoo_architectures_follow_the_graphs():
    # Shapes from the zoo graphs (224x224 inputs, ONNX floor rounding).
    alexnet = AlexNet(variant="bvlc")
    assert alexnet.input.shape == (None, 224, 224, 3)
    assert alexnet.get_layer("conv1").output.shape == (None, 54, 54, 96)
    assert alexnet.get_layer("pool5").output.shape == (None, 6, 6, 256)
    assert alexnet.get_layer("conv2").groups == 2
    zfnet = ZFNet(variant="zfnet512")
    assert zfnet.get_layer("pool5").output.shape == (None, 6, 6, 512)
    assert zfnet.get_layer("fc7").units == 1024
    assert zfnet.get_layer("norm1").to_onnx() == pytest.approx(
        {"size": 5, "alpha": 5e-4, "beta": 0.75, "bias": 2.0})
    googlenet = GoogLeNet()
    # Szegedy et al., Table 1, without the auxiliary classifiers
    assert googlenet.count_params() == 6998552
    order = [layer.name for layer in googlenet.layers][:8]
    assert order.index("pool1_3x3_s2") < order.index("pool1_norm1")


def test_preprocess_input_is_caffes_convention():
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype(np.float32)
    expected = rgb[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(preprocess_input(rgb), expected, rtol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(preprocess_input(keras.ops.convert_to_tensor(rgb))),
        expected, rtol=1e-6)
    channels_first = preprocess_input(rgb.transpose(0, 3, 1, 2), data_format="channels_first")
    np.testing.assert_allclose(channels_first, expected.transpose(0, 3, 1, 2), rtol=1e-6)
    with pytest.raises(ValueError, match="data_format"):
        preprocess_input(rgb, data_format="nhwc")
    with pytest.raises(ValueError, match="shape"):
        preprocess_input(rgb[..., :2])


def test_decode_predictions_uses_the_offline_wordnet_ids():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [0, 999]] = [0.7, 0.2]
    preds[1, 1] = 0.9
    decoded = decode_predictions(preds, top=2)
    # ILSVRC-2012 class 0 is n01440764 (tench), 999 n15075141 (toilet tissue)
    assert decoded[0] == [("n01440764", "n01440764", pytest.approx(0.7)),
                          ("n15075141", "n15075141", pytest.approx(0.2))]
    assert decoded[1][0][0] == "n01443537"  # goldfish
    with pytest.raises(ValueError, match="shape"):
        decode_predictions(preds[:, :10])
    with pytest.raises(ValueError, match="top"):
        decode_predictions(preds, top=0)


# --------------------------------------------------------------------------
# Untrusted files: every malformed file is a ValueError naming it
# --------------------------------------------------------------------------
# A tiny zoo-like network, declared the way a builder module declares its
# zoo graph, keeps these tests cheap: Conv 3x3 -> Relu -> LRN -> MaxPool ->
# Reshape (flatten, its shape a Constant node) -> Gemm -> Softmax.

TINY_LRN = {"size": 3, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}


def _tiny_builder(classifier_activation="softmax", name="tiny"):
    inputs = keras.Input((8, 8, 3))
    x = _common.conv(inputs, 4, 3, name="conv1")
    x = LocalResponseNormalization.from_onnx(**TINY_LRN, name="norm1")(x)
    x = keras.layers.MaxPooling2D(2, 2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _common.classifier(x, 2, classifier_activation, 0.01, 0.0, "fc")
    return keras.Model(inputs, x, name=name)


TINY = zoo.ZooNetwork.from_mapping(_tiny_builder, {
    "name": "tiny",
    "arguments": {},
    "layers": ({"name": "conv1", "op": "Conv", "weights": (4, 3, 3, 3)},
               {"name": "fc", "op": "Gemm", "weights": (2, 36),
                "flattened_from": (4, 3, 3)}),
    "pools": ({"op": "MaxPool", "kernel": 2, "strides": 2},),
    "lrn": TINY_LRN,
    "lrn_count": 1,
})


def _tiny_onnx(seed=0):
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


def _read_verified(path, model=None):
    """What a loader does with the file: read, recognize, verify, and (given
    a Keras model) assign."""
    graph = _onnx_reader.read(path)
    network = zoo.identify(graph, (TINY,))
    zoo.verify(graph, network)
    if model is not None:
        zoo.assign(model, graph, network)
    return graph


def _rejected(path, match):
    """The file raises a ValueError that names it and matches `match`."""
    with pytest.raises(ValueError, match=match) as info:
        _read_verified(path)
    assert str(info.value).endswith(f"Received: path={os.fspath(path)!r}")
    return str(info.value)


def test_tiny_network_matches_onnxruntime(tmp_path):
    """The reader knows no network: a table passed to it is enough."""
    path = _save(_tiny_onnx(), tmp_path / "tiny.onnx")
    model = zoo.build(path, (TINY,))
    x = np.random.default_rng(2).uniform(-50, 50, (1, 8, 8, 3)).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"data": x.transpose(0, 3, 1, 2)})[0]
    _close(model.predict(x, verbose=0), expected)


def test_empty_random_and_truncated_files(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    message = _rejected(tmp_path / "empty.onnx", "empty")
    assert "opset None" not in message
    random = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
    (tmp_path / "random.onnx").write_bytes(random.tobytes())
    _rejected(tmp_path / "random.onnx", None)
    data = _tiny_onnx().SerializeToString()
    for cut in (1, 10, len(data) // 3, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.onnx").write_bytes(data[:cut])
        _rejected(tmp_path / "cut.onnx", None)


def _edited(tmp_path, edit, name="edited.onnx"):
    model = _tiny_onnx()
    edit(model.graph)
    return _save(model, tmp_path / name)


def _node(graph, name):
    return next(n for n in graph.node if n.name == name)


def _attribute(node, name):
    return next(a for a in node.attribute if a.name == name)


def test_constant_without_value(tmp_path):
    path = _edited(tmp_path, lambda g: _node(g, "shape").ClearField("attribute"))
    _rejected(path, "Constant node 'shape'")


def test_constant_with_value_float(tmp_path):
    def edit(graph):
        node = _node(graph, "shape")
        node.ClearField("attribute")
        node.attribute.append(helper.make_attribute("value_float", 2.0))
    _rejected(_edited(tmp_path, edit), "Constant node 'shape'.*value_float")


def test_maxpool_without_kernel_shape(tmp_path):
    def edit(graph):
        node = _node(graph, "pool1")
        node.attribute.remove(_attribute(node, "kernel_shape"))
    _rejected(_edited(tmp_path, edit), "MaxPool node 'pool1' has no kernel_shape")


def test_conv_without_its_weight_input(tmp_path):
    def edit(graph):
        node = _node(graph, "conv1")
        del node.input[1:]
    _rejected(_edited(tmp_path, edit), "Conv node 'conv1' has no weight input")


def test_mistyped_attribute(tmp_path):
    def edit(graph):
        node = _node(graph, "conv1")
        node.attribute.remove(_attribute(node, "strides"))
        node.attribute.append(helper.make_attribute("strides", 1.5))
    _rejected(_edited(tmp_path, edit), "malformed attribute 'strides'")


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32])
def test_wrong_weight_dtypes(tmp_path, dtype):
    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "conv1_w")
        values = numpy_helper.to_array(weight).astype(dtype)
        weight.CopyFrom(numpy_helper.from_array(values, "conv1_w"))
    _rejected(_edited(tmp_path, edit), "'conv1_w' has ONNX data type .*float32")


def test_huge_declared_dims(tmp_path):
    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "fc_w")
        weight.dims[:] = [10**9, 10**9]
    _rejected(_edited(tmp_path, edit), r"'fc_w' declares the dims \[1000000000")

    def edit_small_lie(graph):  # within the limit, but more than the data
        weight = next(t for t in graph.initializer if t.name == "fc_w")
        weight.dims[:] = [2, 37]
    _rejected(_edited(tmp_path, edit_small_lie), "'fc_w' declares the dims")


def test_huge_reshape_of_a_weight(tmp_path):
    model = _zoo_model("light_inception_v1.onnx")
    shape = next(t for t in model.graph.initializer if t.name == "OC2_DUMMY_3")
    shape.CopyFrom(numpy_helper.from_array(np.array([10**12, 1024], np.int64), "OC2_DUMMY_3"))
    path = _save(model, tmp_path / "googlenet-9.onnx")
    with pytest.raises(ValueError, match="Reshape.*sizes differ") as info:
        from_onnx_zoo(path)
    assert repr(path) in str(info.value)


def test_names_that_are_not_utf8_are_refused_naming_the_file(tmp_path):
    # protobuf decodes a string field when it is read: a byte flip in a
    # name (found by test_random_byte_corruptions) raised UnicodeDecodeError
    data = _tiny_onnx().SerializeToString()
    assert data.count(b"fc_b") == 2  # the Gemm's input and the initializer
    (tmp_path / "names.onnx").write_bytes(data.replace(b"fc_b", b"f\xe3_b"))
    _rejected(tmp_path / "names.onnx", "not UTF-8 text")


# External data: only regular files inside the model's folder, links resolved.

def _external(tmp_path, location, offset=0, length=None, folder="model"):
    """The tiny model with `fc_w` stored externally at `location`."""
    model = _tiny_onnx()
    weight = next(t for t in model.graph.initializer if t.name == "fc_w")
    raw = weight.raw_data
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset),
               "length": str(len(raw) if length is None else length)}
    for key, value in entries.items():
        weight.external_data.add(key=key, value=value)
    (tmp_path / folder).mkdir(exist_ok=True)
    return _save(model, tmp_path / folder / "tiny.onnx"), raw


def test_external_data_inside_the_folder_loads(tmp_path):
    path, raw = _external(tmp_path, "weights.bin", offset=8)
    (tmp_path / "model" / "weights.bin").write_bytes(b"\0" * 8 + raw)
    graph = _read_verified(path, _tiny_builder())
    expected = numpy_helper.to_array(
        next(t for t in _tiny_onnx().graph.initializer if t.name == "fc_w"))
    np.testing.assert_array_equal(graph.weighted[1][2][0], expected)


def test_external_data_symlink_to_outside_is_rejected(tmp_path):
    path, raw = _external(tmp_path, "weights.bin")
    (tmp_path / "outside.bin").write_bytes(raw)
    os.symlink(tmp_path / "outside.bin", tmp_path / "model" / "weights.bin")
    _rejected(path, "not a file inside the model's folder")


def test_external_data_link_to_dev_zero_is_rejected(tmp_path):
    path, _ = _external(tmp_path, "zeros.bin", length=2**40)
    os.symlink("/dev/zero", tmp_path / "model" / "zeros.bin")
    _rejected(path, "not a file inside the model's folder")


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/hostname", ""])
def test_external_data_outside_the_folder_is_rejected(tmp_path, location):
    path, raw = _external(tmp_path, location)
    (tmp_path / "outside.bin").write_bytes(raw)
    _rejected(path, "not a file inside the model's folder")


def test_external_data_fifo_and_short_file_are_rejected(tmp_path):
    path, raw = _external(tmp_path, "weights.bin")
    os.mkfifo(tmp_path / "model" / "weights.bin")  # opening it would block
    _rejected(path, "not a regular file")
    os.remove(tmp_path / "model" / "weights.bin")
    (tmp_path / "model" / "weights.bin").write_bytes(raw[:-4])
    _rejected(path, "needs 288 bytes of external data")


# Verified before any Keras model is built.

def _fake_alexnet():
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


def test_fingerprint_and_every_weight_shape_are_verified_before_building(
        tmp_path, monkeypatch):
    path = _save(_fake_alexnet(), tmp_path / "bvlcalexnet-12.onnx")
    assert os.path.getsize(path) < 300_000
    built = []

    def spy(network):
        return dataclasses.replace(network, builder=lambda **kw: built.append(network.name))

    monkeypatch.setattr(applications, "ZOO_NETWORKS",
                        tuple(spy(n) for n in applications.ZOO_NETWORKS))
    with pytest.raises(ValueError, match="'conv2' is a Conv with weights") as info:
        from_onnx_zoo(path)
    assert repr(path) in str(info.value) and built == []
    # the builder's own path reads and verifies before building too
    monkeypatch.setattr(_common, "conv", lambda *a, **kw: built.append("conv"))
    with pytest.raises(ValueError, match="'conv2' is a Conv with weights"):
        AlexNet(variant="bvlc", weights=path)
    assert built == []


# Random corruptions: a ValueError naming the file, or a verified model.

def _loads_or_names_the_file(path, model):
    try:
        _read_verified(path, model)
    except ValueError as e:
        assert repr(os.fspath(path)) in str(e), str(e)


@pytest.fixture(scope="module")
def tiny_keras():
    return _tiny_builder()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("corrupt") / "tiny.onnx"


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                st.integers(1, 255)), max_size=4),
       keep=st.none() | st.floats(0, 1))
def test_random_byte_corruptions(scratch, tiny_keras, flips, keep):
    data = bytearray(_tiny_onnx().SerializeToString())
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    if keep is not None:
        data = data[:int(keep * len(data))]
    scratch.write_bytes(bytes(data))
    _loads_or_names_the_file(scratch, tiny_keras)


def _delete_attribute(graph, draw):
    nodes = [n for n in graph.node if n.attribute]
    node = draw(st.sampled_from(nodes))
    del node.attribute[draw(st.integers(0, len(node.attribute) - 1))]


def _delete_input(graph, draw):
    nodes = [n for n in graph.node if n.input]
    node = draw(st.sampled_from(nodes))
    del node.input[draw(st.integers(0, len(node.input) - 1))]


def _delete_node(graph, draw):
    del graph.node[draw(st.integers(0, len(graph.node) - 1))]


def _delete_initializer(graph, draw):
    del graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]


def _retype_initializer(graph, draw):
    tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
    tensor.data_type = draw(st.integers(0, 20))


def _redim_initializer(graph, draw):
    tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
    tensor.dims[draw(st.integers(0, len(tensor.dims) - 1))] = draw(
        st.sampled_from([0, 1, 3, 36, -1, 2**31, 2**62]))


def _retype_attribute(graph, draw):
    nodes = [n for n in graph.node if n.attribute]
    node = draw(st.sampled_from(nodes))
    attribute = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
    attribute.type = draw(st.integers(0, 14))


EDITS = [_delete_attribute, _delete_input, _delete_node, _delete_initializer,
         _retype_initializer, _redim_initializer, _retype_attribute]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_graph_edits(scratch, tiny_keras, data):
    model = _tiny_onnx()
    for edit in data.draw(st.lists(st.sampled_from(EDITS), min_size=1, max_size=3)):
        edit(model.graph, data.draw)
    scratch.write_bytes(model.SerializeToString())
    _loads_or_names_the_file(scratch, tiny_keras)


# --------------------------------------------------------------------------
# Amplification and graph checks (issue 20): the graph is recognized from
# its declarations before any weight is read, each stored tensor is read
# once, and the bytes all stored tensors declare are within
# _onnx_tensors.MAX_BYTES.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("attribute, value", [
    ("size", 5), ("alpha", 1e-3), ("beta", 0.5), ("bias", 2.0)])
def test_every_lrn_attribute_is_verified(tmp_path, attribute, value):
    def edit(graph):
        lrn = _node(graph, "norm1")
        lrn.attribute.remove(_attribute(lrn, attribute))
        lrn.attribute.append(helper.make_attribute(attribute, value))
    _rejected(_edited(tmp_path, edit), "LRN attributes")


def _shared_conv_file(path, elements, nodes=40, external=None):
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
    return _save(model, path)


def _peak_bytes(function):
    """The ValueError `function` raises and the peak of the Python and
    NumPy memory (tracemalloc tracks both) allocated while it runs."""
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            function()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_shared_initializer_is_not_copied_per_node(tmp_path):
    # 16 MB named by 40 nodes (the file was 54 MB: +2,160 MB when
    # each reference copied it); the file itself is read once (16 MB)
    path = _shared_conv_file(tmp_path / "shared.onnx", 2000**2)
    size = os.path.getsize(path)
    error, peak = _peak_bytes(lambda: from_onnx_zoo(path))
    assert "not one of the ONNX model zoo networks" in str(error)
    assert str(error).endswith(f"Received: path={path!r}")
    assert peak < size + 4 * 2**20, (peak, size)


def test_sparse_external_data_beyond_the_budget_is_refused_unread(tmp_path):
    # the second file: a tiny .onnx beside a 432 MB sparse data file
    # (no disk used) that 8 nodes name
    path = _shared_conv_file(tmp_path / "sparse.onnx", 108_000_000, nodes=8,
                             external="w.bin")
    nbytes = os.path.getsize(tmp_path / "w.bin")
    assert os.path.getsize(path) < 1000 and nbytes > _onnx_tensors.MAX_BYTES
    error, peak = _peak_bytes(lambda: from_onnx_zoo(path))
    assert f"{nbytes} bytes" in str(error), str(error)
    assert str(_onnx_tensors.MAX_BYTES) in str(error)
    assert str(error).endswith(f"Received: path={path!r}")
    assert peak < 2**20, peak


def test_sparse_external_data_within_the_budget_is_not_read(tmp_path):
    # 100 MB named by 8 nodes: within the budget, so the graph is what
    # refuses the file, before its data is read
    path = _shared_conv_file(tmp_path / "sparse.onnx", 25_000_000, nodes=8,
                             external="w.bin")
    error, peak = _peak_bytes(lambda: from_onnx_zoo(path))
    assert "not one of the ONNX model zoo networks" in str(error)
    assert str(error).endswith(f"Received: path={path!r}")
    assert peak < 2**20, peak


def test_total_declared_bytes_are_budgeted(tmp_path, monkeypatch):
    # each tensor within the budget, all of them together not: refused
    # before anything is read
    path = _save(_tiny_onnx(), tmp_path / "tiny.onnx")
    total = 4 * (4 * 3 * 3 * 3 + 4 + 2 * 36 + 2) + 8 * 2  # + the Constant
    monkeypatch.setattr(_onnx_tensors, "MAX_BYTES", total)
    assert len(_read_verified(path).weighted) == 2
    monkeypatch.setattr(_onnx_tensors, "MAX_BYTES", total - 1)
    message = _rejected(path, f"declare {total} bytes in all, more than "
                              f"the {total - 1} bytes")
    assert "tiny.onnx" in message


def test_zoo_networks_fit_the_budget():
    for network in ZOO_NETWORKS:
        weights = sum(4 * int(np.prod(shape)) for layer in network.layers
                      for shape in layer.shapes)
        assert weights <= _onnx_tensors.MAX_BYTES, network.name
    # zfnet512, the largest: 349.0 MB in the zoo's file (87.3M float32)
    assert max(4 * sum(int(np.prod(s)) for layer in n.layers
                       for s in layer.shapes) for n in ZOO_NETWORKS
               ) == 349_002_144


def test_declared_shapes_identify_before_any_weight_is_read(tmp_path,
                                                            monkeypatch):
    path = _save(_fake_alexnet(), tmp_path / "bvlcalexnet-12.onnx")
    reads = []
    monkeypatch.setattr(_onnx_tensors, "_to_array",
                        lambda *a: reads.append(a[0].name))
    with pytest.raises(ValueError, match="'conv2' is a Conv with weights"):
        from_onnx_zoo(path)
    with pytest.raises(ValueError, match="not one of the ONNX model zoo"):
        from_onnx_zoo(_shared_conv_file(tmp_path / "s.onnx", 100))
    assert reads == []


@pytest.mark.parametrize("dims", [
    [2**62, 2**62, 0],     # the product is 0: each dim is checked
    [-1, 36], [2, -36],    # negative
    [2**32, 2**32],        # overflows an int64 product
    [2**40],
])
def test_malformed_dims_are_refused_naming_the_file(tmp_path, dims):
    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "fc_w")
        weight.dims[:] = dims
        if 0 in dims:  # data as long as the product: the dims are the lie
            weight.raw_data = b""
    _rejected(_edited(tmp_path, edit), rf"'fc_w' declares the dims \[")


@pytest.mark.parametrize("opsets, match", [
    ([("", 9), ("com.microsoft", 1)], "domains .'com.microsoft'. beside"),
    ([("ai.onnx.ml", 2), ("", 9)], "domains .'ai.onnx.ml'. beside"),
    ([("", 9), ("ai.onnx", 12)], "imports ai.onnx 2 times"),
    ([("com.example", 9)], "domains .'com.example'. beside"),
])
def test_every_opset_import_is_checked(tmp_path, opsets, match):
    model = _tiny_onnx()
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    path = _save(model, tmp_path / "tiny.onnx")
    _rejected(path, match)


def test_node_of_another_domain_is_refused(tmp_path):
    def edit(graph):
        _node(graph, "relu1").domain = "com.example"
    _rejected(_edited(tmp_path, edit), "domains")


@pytest.mark.parametrize("node, index", [("relu1", 0), ("fc", 2),
                                         ("flatten", 1)])
def test_dangling_node_input_is_refused(tmp_path, node, index):
    def edit(graph):
        _node(graph, node).input[index] = "produced_by_nothing"
    message = _rejected(_edited(tmp_path, edit), "produced_by_nothing")
    assert "no initializer, graph input or earlier node" in message


def test_input_produced_by_a_later_node_is_refused(tmp_path):
    def edit(graph):
        nodes = list(graph.node)
        relu = _node(graph, "relu1")
        nodes.remove(relu)
        nodes.append(relu)  # its output is read by LRN, before it
        del graph.node[:]
        graph.node.extend(nodes)
    _rejected(_edited(tmp_path, edit), "'n1'|'r1'")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(tmp_path, value):
    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "conv1_w")
        values = numpy_helper.to_array(weight).copy()
        values[1, 2, 0, 1] = value
        weight.CopyFrom(numpy_helper.from_array(values, "conv1_w"))
    path = _edited(tmp_path, edit)
    with pytest.raises(ValueError, match="'conv1_w' holds 1 non-finite") as info:
        _read_verified(path, _tiny_builder())
    assert str(info.value).endswith(f"Received: path={path!r}")
    with pytest.raises(ValueError, match="non-finite"):
        zoo.build(path, (TINY,))


# Two 1x1 convolutions naming one stored tensor: read once, loaded twice.

def _shared_builder(classifier_activation="softmax", name="shared"):
    inputs = keras.Input((4, 4, 3))
    x = _common.conv(inputs, 3, 1, name="conv1")
    x = _common.conv(x, 3, 1, name="conv2")
    x = LocalResponseNormalization.from_onnx(**TINY_LRN, name="norm1")(x)
    x = keras.layers.MaxPooling2D(2, 2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = _common.classifier(x, 2, classifier_activation, 0.01, 0.0, "fc")
    return keras.Model(inputs, x, name=name)


SHARED = zoo.ZooNetwork.from_mapping(_shared_builder, {
    "name": "shared",
    "arguments": {},
    "layers": ({"name": "conv1", "op": "Conv", "weights": (3, 3, 1, 1)},
               {"name": "conv2", "op": "Conv", "weights": (3, 3, 1, 1)},
               {"name": "fc", "op": "Gemm", "weights": (2, 12),
                "flattened_from": (3, 2, 2)}),
    "pools": ({"op": "MaxPool", "kernel": 2, "strides": 2},),
    "lrn": TINY_LRN,
    "lrn_count": 1,
})


def test_a_tensor_named_by_two_nodes_is_read_once(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 3, 1, 1)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["data", "w", "b"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["c1", "w", "b"], ["c2"], name="conv2"),
        helper.make_node("LRN", ["c2"], ["n1"], name="norm1", **TINY_LRN),
        helper.make_node("MaxPool", ["n1"], ["p1"], name="pool1",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], name="fc",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["prob"], name="prob"),
    ]
    graph = helper.make_graph(
        nodes, "shared",
        [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT,
                                       [1, 3, 4, 4])],
        [helper.make_tensor_value_info("prob", onnx.TensorProto.FLOAT, [1, 2])],
        initializer=[
            numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
            numpy_helper.from_array(rng.normal(size=(2, 12)).astype(
                np.float32), "fc_w"),
            numpy_helper.from_array(np.zeros(2, np.float32), "fc_b")])
    path = _save(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 12)]),
        tmp_path / "shared.onnx")
    graph = _onnx_reader.read(path)
    zoo.verify(graph, SHARED)
    assert graph.store.reads == 0
    _onnx_reader.load(graph)
    assert graph.store.reads == 4  # w, b, fc_w, fc_b: once each
    first, second = graph.weighted[0][2][0], graph.weighted[1][2][0]
    assert np.asarray(first) is np.asarray(second)
    model = zoo.build(path, (SHARED,))
    x = rng.uniform(-50, 50, (1, 4, 4, 3)).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"data": x.transpose(0, 3, 1, 2)})[0]
    _close(model.predict(x, verbose=0), expected)


@pytest.mark.parametrize("sized_now", [2**20, 0])
def test_raw_data_shorter_than_its_dims_is_refused(tmp_path, monkeypatch,
                                                   sized_now):
    # small tensors are measured by `read`, large ones (here all, with the
    # threshold at 0) when `load` reads them: both name the file
    monkeypatch.setattr(_onnx_tensors, "_SIZED_NOW", sized_now)

    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "fc_w")
        weight.raw_data = weight.raw_data[:-8]
    path = _edited(tmp_path, edit)
    with pytest.raises(ValueError, match=r"'fc_w' declares the dims \[2, 36\] "
                       r"\(288 bytes\) and holds 280 bytes") as info:
        _read_verified(path, _tiny_builder())
    assert str(info.value).endswith(f"Received: path={path!r}")
