"""`keras_lrn.applications._onnx_tensors`: an ONNX file's stored tensors.

Their bytes are budgeted from what they declare before anything is read
(each dim, each tensor, all of them together within `MAX_BYTES`: the
amplification files of issue 20), each is read once however many nodes
name it, external data only from regular files inside the model's folder,
and non-finite or short data is refused, always with a `ValueError` naming
the file. The files are the tiny zoo-like network of tests/onnx_files.py,
edited, and the issue's amplification files.
"""

import os

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from keras_lrn import LocalResponseNormalization
from keras_lrn.applications import (ZOO_NETWORKS, _common, _onnx_reader,
                                    _onnx_tensors, from_onnx_zoo, zoo)
from tests.onnx_files import (TINY, TINY_LRN, assert_close, edited,
                              read_verified, rejected, save_onnx,
                              shared_conv_file, tiny_builder, tiny_onnx)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32])
def test_wrong_weight_dtypes(tmp_path, dtype):
    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "conv1_w")
        values = numpy_helper.to_array(weight).astype(dtype)
        weight.CopyFrom(numpy_helper.from_array(values, "conv1_w"))
    rejected(edited(tmp_path, edit), "'conv1_w' has ONNX data type .*float32")


def test_huge_declared_dims(tmp_path):
    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "fc_w")
        weight.dims[:] = [10**9, 10**9]
    rejected(edited(tmp_path, edit), r"'fc_w' declares the dims \[1000000000")

    def edit_small_lie(graph):  # within the limit, but more than the data
        weight = next(t for t in graph.initializer if t.name == "fc_w")
        weight.dims[:] = [2, 37]
    rejected(edited(tmp_path, edit_small_lie), "'fc_w' declares the dims")


def _external(tmp_path, location, offset=0, length=None, folder="model"):
    """The tiny model with `fc_w` stored externally at `location`."""
    model = tiny_onnx()
    weight = next(t for t in model.graph.initializer if t.name == "fc_w")
    raw = weight.raw_data
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset),
               "length": str(len(raw) if length is None else length)}
    for key, value in entries.items():
        weight.external_data.add(key=key, value=value)
    (tmp_path / folder).mkdir(exist_ok=True)
    return save_onnx(model, tmp_path / folder / "tiny.onnx"), raw


def test_external_data_inside_the_folder_loads(tmp_path):
    path, raw = _external(tmp_path, "weights.bin", offset=8)
    (tmp_path / "model" / "weights.bin").write_bytes(b"\0" * 8 + raw)
    graph = read_verified(path, tiny_builder())
    expected = numpy_helper.to_array(
        next(t for t in tiny_onnx().graph.initializer if t.name == "fc_w"))
    np.testing.assert_array_equal(graph.weighted[1][2][0], expected)


def test_external_data_symlink_to_outside_is_rejected(tmp_path):
    path, raw = _external(tmp_path, "weights.bin")
    (tmp_path / "outside.bin").write_bytes(raw)
    os.symlink(tmp_path / "outside.bin", tmp_path / "model" / "weights.bin")
    rejected(path, "not a file inside the model's folder")


def test_external_data_link_to_dev_zero_is_rejected(tmp_path):
    path, _ = _external(tmp_path, "zeros.bin", length=2**40)
    os.symlink("/dev/zero", tmp_path / "model" / "zeros.bin")
    rejected(path, "not a file inside the model's folder")


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/hostname", ""])
def test_external_data_outside_the_folder_is_rejected(tmp_path, location):
    path, raw = _external(tmp_path, location)
    (tmp_path / "outside.bin").write_bytes(raw)
    rejected(path, "not a file inside the model's folder")


def test_external_data_fifo_and_short_file_are_rejected(tmp_path):
    path, raw = _external(tmp_path, "weights.bin")
    os.mkfifo(tmp_path / "model" / "weights.bin")  # opening it would block
    rejected(path, "not a regular file")
    os.remove(tmp_path / "model" / "weights.bin")
    (tmp_path / "model" / "weights.bin").write_bytes(raw[:-4])
    rejected(path, "needs 288 bytes of external data")


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
    path = shared_conv_file(tmp_path / "shared.onnx", 2000**2)
    size = os.path.getsize(path)
    error, peak = _peak_bytes(lambda: from_onnx_zoo(path))
    assert "not one of the ONNX model zoo networks" in str(error)
    assert str(error).endswith(f"Received: path={path!r}")
    assert peak < size + 4 * 2**20, (peak, size)


def test_sparse_external_data_beyond_the_budget_is_refused_unread(tmp_path):
    # the second file: a tiny .onnx beside a 432 MB sparse data file
    # (no disk used) that 8 nodes name
    path = shared_conv_file(tmp_path / "sparse.onnx", 108_000_000, nodes=8,
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
    path = shared_conv_file(tmp_path / "sparse.onnx", 25_000_000, nodes=8,
                             external="w.bin")
    error, peak = _peak_bytes(lambda: from_onnx_zoo(path))
    assert "not one of the ONNX model zoo networks" in str(error)
    assert str(error).endswith(f"Received: path={path!r}")
    assert peak < 2**20, peak


def test_total_declared_bytes_are_budgeted(tmp_path, monkeypatch):
    # each tensor within the budget, all of them together not: refused
    # before anything is read
    path = save_onnx(tiny_onnx(), tmp_path / "tiny.onnx")
    total = 4 * (4 * 3 * 3 * 3 + 4 + 2 * 36 + 2) + 8 * 2  # + the Constant
    monkeypatch.setattr(_onnx_tensors, "MAX_BYTES", total)
    assert len(read_verified(path).weighted) == 2
    monkeypatch.setattr(_onnx_tensors, "MAX_BYTES", total - 1)
    message = rejected(path, f"declare {total} bytes in all, more than "
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
    rejected(edited(tmp_path, edit), rf"'fc_w' declares the dims \[")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(tmp_path, value):
    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "conv1_w")
        values = numpy_helper.to_array(weight).copy()
        values[1, 2, 0, 1] = value
        weight.CopyFrom(numpy_helper.from_array(values, "conv1_w"))
    path = edited(tmp_path, edit)
    with pytest.raises(ValueError, match="'conv1_w' holds 1 non-finite") as info:
        read_verified(path, tiny_builder())
    assert str(info.value).endswith(f"Received: path={path!r}")
    with pytest.raises(ValueError, match="non-finite"):
        zoo.build(path, (TINY,))


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
    path = save_onnx(helper.make_model(
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
    assert_close(model.predict(x, verbose=0), expected)


@pytest.mark.parametrize("sized_now", [2**20, 0])
def test_raw_data_shorter_than_its_dims_is_refused(tmp_path, monkeypatch,
                                                   sized_now):
    # small tensors are measured by `read`, large ones (here all, with the
    # threshold at 0) when `load` reads them: both name the file
    monkeypatch.setattr(_onnx_tensors, "_SIZED_NOW", sized_now)

    def edit(graph):
        weight = next(t for t in graph.initializer if t.name == "fc_w")
        weight.raw_data = weight.raw_data[:-8]
    path = edited(tmp_path, edit)
    with pytest.raises(ValueError, match=r"'fc_w' declares the dims \[2, 36\] "
                       r"\(288 bytes\) and holds 280 bytes") as info:
        read_verified(path, tiny_builder())
    assert str(info.value).endswith(f"Received: path={path!r}")
