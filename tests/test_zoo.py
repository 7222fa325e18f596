"""Tests for loading the ONNX model zoo's LRN networks (keras_lrn.applications.zoo).

The reference is onnxruntime running the zoo's graph on the same input. The
real zoo files are not downloaded: the onnx wheel ships the zoo's graphs with
their weights stripped (`onnx/backend/test/data/light/`, each weight a
`ConstantOfShape` node). `_zoo_file` turns those nodes into ordinary
initializers holding random He-scaled weights, so that with 0-255,
mean-subtracted inputs the activations reach the range where LRN matters,
and saves the result as a zoo-style file.

The ONNX reader below the zoo mapping has its own test modules:
tests/test_onnx_wire.py (the structure, before parsing),
tests/test_onnx_reader.py (the graph's checks) and tests/test_onnx_tensors.py
(the stored tensors' bytes and reads); tests/onnx_files.py holds the tiny
zoo-like network they and this module edit.
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
from keras_lrn.applications import _common, zoo
from keras_lrn.applications import (ZOO_NETWORKS, AlexNet, GoogLeNet, ZFNet,
                                    decode_predictions, from_onnx_zoo,
                                    preprocess_input)
from tests.onnx_files import (TINY, TINY_LRN, assert_close, attribute_named,
                              edited, fake_alexnet, node_named,
                              read_verified, rejected, save_onnx,
                              tiny_builder, tiny_onnx)

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


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    cache = {}

    def get(network, opset=None):
        key = (network, opset)
        if key not in cache:
            model = _zoo_model(LIGHT_FILES[network], opset)
            path = save_onnx(model, folder / f"{network}-{opset or 9}.onnx")
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
    assert_close(model.predict(images, verbose=0), probs)
    logit_model = from_onnx_zoo(path, classifier_activation=None)
    assert_close(logit_model.predict(images, verbose=0), logits)
    # the softmax is not saturated, so the probabilities check the logits too
    assert probs.max() < 0.999
    lrn = [layer for layer in model.layers
           if isinstance(layer, LocalResponseNormalization)][0]
    first_lrn = keras.Model(model.input, lrn.output).predict(images, verbose=0)
    assert_close(first_lrn, lrn_out.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("network", list(NETWORKS))
def test_builder_with_weights_path_matches_onnxruntime(zoo_files, network):
    path, (_, logits, _, _) = zoo_files(network)
    model = NETWORKS[network].builder(weights=path, classifier_activation=None)
    assert_close(model.predict(_images(), verbose=0), logits)


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
    assert_close(model.predict(_images(), verbose=0), logits)


def test_towers_load_the_grouped_weights(zoo_files):
    path, (_, logits, _, _) = zoo_files("bvlc_alexnet")
    model = AlexNet(variant="bvlc", weights=path, group_implementation="towers",
                    classifier_activation=None)
    assert_close(model.predict(_images(), verbose=0), logits)


def test_headless_model_takes_the_convolutional_weights(zoo_files):
    path, (_, _, _, lrn_out) = zoo_files("googlenet")
    model = GoogLeNet(weights=path, include_top=False, pooling="avg")
    assert model.output.shape == (None, 1024)
    lrn = keras.Model(model.input, model.get_layer("pool1_norm1").output)
    assert_close(lrn.predict(_images(), verbose=0), lrn_out.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("network", ["bvlc_alexnet", "googlenet"])
def test_saves_and_loads_as_keras_file(zoo_files, network, tmp_path):
    path, (probs, _, _, _) = zoo_files(network)
    model = from_onnx_zoo(path)
    model.save(tmp_path / "zoo.keras")
    restored = keras.models.load_model(tmp_path / "zoo.keras")
    assert_close(restored.predict(_images(), verbose=0), probs)


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
    path = save_onnx(model, tmp_path / "googlenet-12-int8.onnx")
    with pytest.raises(ValueError, match=r"quantized \(int8\)"):
        from_onnx_zoo(path)


@pytest.mark.parametrize("opset", [8, 13])
def test_other_opsets_are_rejected(tmp_path, opset):
    model = _zoo_model("light_inception_v1.onnx")
    model.opset_import[0].version = opset
    with pytest.raises(ValueError, match=f"opset {opset}"):
        from_onnx_zoo(save_onnx(model, tmp_path / "z.onnx"))


def test_other_graphs_are_rejected(tmp_path):
    path = save_onnx(_zoo_model("light_squeezenet.onnx"), tmp_path / "squeezenet.onnx")
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
        from_onnx_zoo(save_onnx(model, tmp_path / "g.onnx"))


def test_missing_and_non_onnx_files_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        from_onnx_zoo(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf \xff\xfe")
    with pytest.raises(ValueError, match="not a readable ONNX file"):
        from_onnx_zoo(tmp_path / "junk.onnx")


def test_builder_rejects_the_wrong_network_and_variant(tmp_path):
    path = save_onnx(_zoo_model("light_inception_v1.onnx"), tmp_path / "googlenet-9.onnx")
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
        zoo.ZooNetwork.from_mapping(tiny_builder, dict(
            name="t", arguments={}, pools=(), lrn=TINY_LRN, lrn_count=1,
            layers=({"name": "fc", "op": "MatMul", "weights": (2, 36)},)))
    with pytest.raises(ValueError, match="keys"):
        zoo.ZooNetwork.from_mapping(tiny_builder, dict(
            name="t", arguments={}, pools=(), lrn=TINY_LRN, lrn_count=1,
            layers=({"name": "c", "op": "Conv", "weights": (4, 3, 3, 3),
                     "dilations": 2},)))
    with pytest.raises(ValueError, match="keys"):
        zoo.ZooNetwork.from_mapping(tiny_builder, {"name": "t"})


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
# Untrusted files: every malformed file is a ValueError naming it (the
# reader's own checks: tests/test_onnx_wire.py, tests/test_onnx_reader.py,
# tests/test_onnx_tensors.py; the tiny network: tests/onnx_files.py)
# --------------------------------------------------------------------------

def test_tiny_network_matches_onnxruntime(tmp_path):
    """The reader knows no network: a table passed to it is enough."""
    path = save_onnx(tiny_onnx(), tmp_path / "tiny.onnx")
    model = zoo.build(path, (TINY,))
    x = np.random.default_rng(2).uniform(-50, 50, (1, 8, 8, 3)).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"data": x.transpose(0, 3, 1, 2)})[0]
    assert_close(model.predict(x, verbose=0), expected)


def test_huge_reshape_of_a_weight(tmp_path):
    model = _zoo_model("light_inception_v1.onnx")
    shape = next(t for t in model.graph.initializer if t.name == "OC2_DUMMY_3")
    shape.CopyFrom(numpy_helper.from_array(np.array([10**12, 1024], np.int64), "OC2_DUMMY_3"))
    path = save_onnx(model, tmp_path / "googlenet-9.onnx")
    with pytest.raises(ValueError, match="Reshape.*sizes differ") as info:
        from_onnx_zoo(path)
    assert repr(path) in str(info.value)


# Verified before any Keras model is built.


def test_fingerprint_and_every_weight_shape_are_verified_before_building(
        tmp_path, monkeypatch):
    path = save_onnx(fake_alexnet(), tmp_path / "bvlcalexnet-12.onnx")
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
        read_verified(path, model)
    except ValueError as e:
        assert repr(os.fspath(path)) in str(e), str(e)


@pytest.fixture(scope="module")
def tiny_keras():
    return tiny_builder()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("corrupt") / "tiny.onnx"


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                st.integers(1, 255)), max_size=4),
       keep=st.none() | st.floats(0, 1))
def test_random_byte_corruptions(scratch, tiny_keras, flips, keep):
    data = bytearray(tiny_onnx().SerializeToString())
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
    model = tiny_onnx()
    for edit in data.draw(st.lists(st.sampled_from(EDITS), min_size=1, max_size=3)):
        edit(model.graph, data.draw)
    scratch.write_bytes(model.SerializeToString())
    _loads_or_names_the_file(scratch, tiny_keras)


# --------------------------------------------------------------------------
# The graph is checked against the network's mapping (issue 20)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("attribute, value", [
    ("size", 5), ("alpha", 1e-3), ("beta", 0.5), ("bias", 2.0)])
def test_every_lrn_attribute_is_verified(tmp_path, attribute, value):
    def edit(graph):
        lrn = node_named(graph, "norm1")
        lrn.attribute.remove(attribute_named(lrn, attribute))
        lrn.attribute.append(helper.make_attribute(attribute, value))
    rejected(edited(tmp_path, edit), "LRN attributes")
