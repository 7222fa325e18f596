"""`keras_lrn.applications._onnx_wire`: an ONNX file's structure is bounded
from its serialized form, before `onnx` parses anything.

The zoo's own files and the reader's later checks (declarations, tensors,
the mapping) are tested in tests/test_zoo.py.
"""

import os

import onnx
import pytest
from onnx import helper

from keras_lrn.applications import ZOO_NETWORKS, _onnx_reader, _onnx_wire


def _graph_file(path, nodes, doc_string=""):
    graph = helper.make_graph(
        nodes, "structure",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                       [1, 3, 8, 8])],
        [helper.make_tensor_value_info(nodes[-1].output[0],
                                       onnx.TensorProto.FLOAT, None)])
    graph.doc_string = doc_string
    model = helper.make_model(graph,
                              opset_imports=[helper.make_opsetid("", 12)])
    onnx.save(model, str(path))
    return str(path)


def _rejected(path, match):
    """`read` raises a ValueError that names the file and matches `match`."""
    with pytest.raises(ValueError, match=match) as info:
        _onnx_reader.read(path)
    assert str(info.value).endswith(f"Received: path={os.fspath(path)!r}")
    return str(info.value)


def _relus(count):
    return [helper.make_node("Relu", ["x" if i == 0 else f"r{i - 1}"],
                             [f"r{i}"], name=f"relu{i}")
            for i in range(count)]


STRUCTURE_CASES = {
    # each beyond one limit by one, the rest of the file tiny
    "nodes": (lambda: _relus(_onnx_wire.MAX_NODES + 1),
              "more than 1024 nodes"),
    "pads": (lambda: [helper.make_node(
        "Conv", ["x", "w"], ["y"], name="conv",
        pads=[1] * (_onnx_wire.MAX_ATTRIBUTE_ELEMENTS + 1))],
        "An attribute has more than 16 elements"),
    "attribute elements in all": (lambda: [helper.make_node(
        "MaxPool", ["x" if i == 0 else f"p{i - 1}"], [f"p{i}"],
        name=f"pool{i}", kernel_shape=[1] * 16)
        for i in range(_onnx_wire.MAX_ATTRIBUTES_ELEMENTS // 16 + 1)],
        "more than 8192 elements in all"),
    "name": (lambda: [helper.make_node(
        "Relu", ["x"], ["y"], name="n" * (_onnx_wire.MAX_NAME_BYTES + 1))],
        "node name is 257 bytes long"),
    "node inputs": (lambda: [helper.make_node(
        "Concat", ["x"] * (_onnx_wire.MAX_NODE_ARITY + 1), ["y"],
        axis=1)], "more than 16 inputs"),
}


@pytest.mark.parametrize("case", sorted(STRUCTURE_CASES))
def test_structure_beyond_the_zoo_networks_is_refused_before_parsing(
        tmp_path, monkeypatch, case):
    nodes, match = STRUCTURE_CASES[case]
    path = _graph_file(tmp_path / "structure.onnx", nodes())

    def parse(*args, **kwargs):
        raise AssertionError("onnx parsed a file beyond the limits")

    monkeypatch.setattr(onnx, "load_model", parse)
    message = _rejected(path, match)
    assert "No model zoo file" in message


def test_graph_bytes_beyond_the_limit_are_refused_before_parsing(
        tmp_path, monkeypatch):
    path = _graph_file(tmp_path / "doc.onnx", _relus(2),
                       doc_string="d" * _onnx_wire.MAX_GRAPH_BYTES)
    monkeypatch.setattr(onnx, "load_model", None)  # never reached
    _rejected(path, r"graph \(everything but tensor data\) is \d+ bytes")


def test_structure_limits_hold_the_zoo_networks_with_room():
    """Each network's graph, from its mapping: a Conv or Gemm and its Relu
    per weighted layer, the pools and LRNs, and at most 16 nodes more
    (GoogLeNet's 9 Concat, Dropout, the flatten, Softmax)."""
    for network in ZOO_NETWORKS:
        nodes = 2 * len(network.layers) + len(network.pools) + (
            network.lrn_count) + 16
        assert 4 * nodes <= _onnx_wire.MAX_NODES, (network.name, nodes)
        assert 2 * 2 * len(network.layers) <= _onnx_wire.MAX_TENSORS
        # the most elements an attribute of theirs holds: pads, 4
        assert max(len(value) for layer in network.layers
                   for _, value in layer.attributes
                   if isinstance(value, tuple)) <= 4
        names = [layer.name for layer in network.layers]
        assert max(map(len, names)) * 4 <= _onnx_wire.MAX_NAME_BYTES
