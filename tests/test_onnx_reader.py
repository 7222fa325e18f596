"""`keras_lrn.applications._onnx_reader`: parsing an ONNX file and checking
its graph from its declarations, before any weight is read.

Every malformed file raises a `ValueError` naming it: empty, random or
truncated bytes, a broken Constant, pool, Conv or attribute, an opset import
of another domain or twice, a node of another domain, an input that nothing
(or only a later node) produces. The files are the tiny zoo-like network of
tests/onnx_files.py, edited.
"""

import numpy as np
import pytest
from onnx import helper

from keras_lrn.applications import _onnx_tensors, from_onnx_zoo
from tests.onnx_files import (attribute_named, edited, fake_alexnet,
                              node_named, rejected, save_onnx,
                              shared_conv_file, tiny_onnx)


def test_empty_random_and_truncated_files(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    message = rejected(tmp_path / "empty.onnx", "empty")
    assert "opset None" not in message
    random = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
    (tmp_path / "random.onnx").write_bytes(random.tobytes())
    rejected(tmp_path / "random.onnx", None)
    data = tiny_onnx().SerializeToString()
    for cut in (1, 10, len(data) // 3, len(data) // 2, len(data) - 1):
        (tmp_path / "cut.onnx").write_bytes(data[:cut])
        rejected(tmp_path / "cut.onnx", None)


def test_constant_without_value(tmp_path):
    path = edited(tmp_path, lambda g: node_named(g, "shape").ClearField("attribute"))
    rejected(path, "Constant node 'shape'")


def test_constant_with_value_float(tmp_path):
    def edit(graph):
        node = node_named(graph, "shape")
        node.ClearField("attribute")
        node.attribute.append(helper.make_attribute("value_float", 2.0))
    rejected(edited(tmp_path, edit), "Constant node 'shape'.*value_float")


def test_maxpool_without_kernel_shape(tmp_path):
    def edit(graph):
        node = node_named(graph, "pool1")
        node.attribute.remove(attribute_named(node, "kernel_shape"))
    rejected(edited(tmp_path, edit), "MaxPool node 'pool1' has no kernel_shape")


def test_conv_without_its_weight_input(tmp_path):
    def edit(graph):
        node = node_named(graph, "conv1")
        del node.input[1:]
    rejected(edited(tmp_path, edit), "Conv node 'conv1' has no weight input")


def test_mistyped_attribute(tmp_path):
    def edit(graph):
        node = node_named(graph, "conv1")
        node.attribute.remove(attribute_named(node, "strides"))
        node.attribute.append(helper.make_attribute("strides", 1.5))
    rejected(edited(tmp_path, edit), "malformed attribute 'strides'")


def test_declared_shapes_identify_before_any_weight_is_read(tmp_path,
                                                            monkeypatch):
    path = save_onnx(fake_alexnet(), tmp_path / "bvlcalexnet-12.onnx")
    reads = []
    monkeypatch.setattr(_onnx_tensors, "_to_array",
                        lambda *a: reads.append(a[0].name))
    with pytest.raises(ValueError, match="'conv2' is a Conv with weights"):
        from_onnx_zoo(path)
    with pytest.raises(ValueError, match="not one of the ONNX model zoo"):
        from_onnx_zoo(shared_conv_file(tmp_path / "s.onnx", 100))
    assert reads == []


@pytest.mark.parametrize("opsets, match", [
    ([("", 9), ("com.microsoft", 1)], "domains .'com.microsoft'. beside"),
    ([("ai.onnx.ml", 2), ("", 9)], "domains .'ai.onnx.ml'. beside"),
    ([("", 9), ("ai.onnx", 12)], "imports ai.onnx 2 times"),
    ([("com.example", 9)], "domains .'com.example'. beside"),
])
def test_every_opset_import_is_checked(tmp_path, opsets, match):
    model = tiny_onnx()
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    path = save_onnx(model, tmp_path / "tiny.onnx")
    rejected(path, match)


def test_node_of_another_domain_is_refused(tmp_path):
    def edit(graph):
        node_named(graph, "relu1").domain = "com.example"
    rejected(edited(tmp_path, edit), "domains")


@pytest.mark.parametrize("node, index", [("relu1", 0), ("fc", 2),
                                         ("flatten", 1)])
def test_dangling_node_input_is_refused(tmp_path, node, index):
    def edit(graph):
        node_named(graph, node).input[index] = "produced_by_nothing"
    message = rejected(edited(tmp_path, edit), "produced_by_nothing")
    assert "no initializer, graph input or earlier node" in message


def test_input_produced_by_a_later_node_is_refused(tmp_path):
    def edit(graph):
        nodes = list(graph.node)
        relu = node_named(graph, "relu1")
        nodes.remove(relu)
        nodes.append(relu)  # its output is read by LRN, before it
        del graph.node[:]
        graph.node.extend(nodes)
    rejected(edited(tmp_path, edit), "'n1'|'r1'")


def test_names_that_are_not_utf8_are_refused_naming_the_file(tmp_path):
    # protobuf decodes a string field when it is read: a byte flip in a
    # name (found by test_random_byte_corruptions) raised UnicodeDecodeError
    data = tiny_onnx().SerializeToString()
    assert data.count(b"fc_b") == 2  # the Gemm's input and the initializer
    (tmp_path / "names.onnx").write_bytes(data.replace(b"fc_b", b"f\xe3_b"))
    rejected(tmp_path / "names.onnx", "not UTF-8 text")
