"""An ONNX file's structure, bounded before anything parses it.

Files are untrusted input. `check_structure` walks a file's serialized form
(the protobuf wire format, through a read-only memory map, copying nothing
but short strings) and refuses, before `onnx` parses anything, a file whose
structure lies outside what the zoo's networks need: the number of nodes,
of inputs and outputs of a node, of attributes of a node, the elements of
each attribute and of all of them, the length of every name, the number of
stored tensors and their dims, the bytes of everything but tensor data
(`MAX_GRAPH_BYTES`), and the fields walked (`MAX_NODES` and siblings).

`file_error` is the `ValueError` every check of an ONNX file raises, here
and in `keras_lrn.applications._onnx_tensors`, `._onnx_reader` and `.zoo`:
it names the file, the problem and what to do. `keras_lrn.applications.
_onnx_reader` calls `check_structure` before it parses the file.
"""

import mmap
import os

import numpy as np

__all__ = ["MAX_GRAPH_BYTES", "check_structure", "file_error"]

# The limits on a file's structure, checked from its serialized form
# before `onnx` parses it (`check_structure`). The zoo's three networks
# (bvlcalexnet-12, zfnet512-12, googlenet-12: 233 MB, 349 MB and 28 MB)
# are plain chains of standard operators; the largest graph, GoogLeNet's,
# has about 150 nodes (57 Conv and 57 Relu, 1 Gemm, 14 pools, 2 LRN, 9
# Concat, Dropout, the flatten and Softmax), at most 4 inputs to a node
# (Concat), at most 6 attributes on a node (MaxPool), at most 4 elements in
# an attribute (`pads`), about 1,000 attribute elements in all, names under
# 64 bytes, 2 stored tensors per Conv or Gemm (118) with at most 4 dims,
# and tens of kilobytes of graph besides its tensors' data. Each limit
# leaves room above that.
MAX_NODES = 1024
MAX_NODE_ARITY = 16          # inputs, or outputs, of one node
MAX_NODE_ATTRIBUTES = 16
MAX_ATTRIBUTE_ELEMENTS = 16  # ints, floats or strings of one attribute
MAX_ATTRIBUTES_ELEMENTS = 8 * 1024  # of all attributes together
MAX_NAME_BYTES = 256         # any name, op type, domain or string value
MAX_TENSORS = 1024           # stored tensors (initializers and Constants)
MAX_DIMS = 8
MAX_VALUE_INFOS = 1024       # graph inputs, outputs or value_info, each
# integers stored as varints outside raw_data (int32_data, int64_data,
# uint64_data: up to 8 bytes in memory from 1 byte of file), all together
MAX_VARINT_VALUES = 2**16
# everything but tensor data (raw_data and packed float or double values)
MAX_GRAPH_BYTES = 2**20
# protobuf fields walked in all: bounds the walk's time (one tag per value
# of an unpacked repeated field)
MAX_FIELDS = 2**18


REFETCH = ("Load the model zoo's original float32 file (download it again "
            "if this one was damaged or edited).")


def file_error(path, problem, fix=REFETCH):
    """A `ValueError` naming the file, the problem and what to do."""
    return ValueError(f"{problem} {fix} Received: path={path!r}".replace(
        "  ", " "))


# protobuf field numbers (onnx.proto): ModelProto.graph; GraphProto.node,
# .initializer, .input, .output, .value_info; NodeProto.input, .output,
# .name, .op_type, .attribute, .domain; AttributeProto.name, .s, .t, .g,
# .floats, .ints, .strings, .tensors, .graphs; TensorProto.dims,
# .float_data, .int32_data, .string_data, .int64_data, .name, .raw_data,
# .double_data, .uint64_data
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER = 1, 5
_GRAPH_VALUE_INFOS = {11: "graph inputs", 12: "graph outputs",
                      13: "value_info entries"}
_NODE_INPUT, _NODE_OUTPUT, _NODE_ATTRIBUTE = 1, 2, 5
_NODE_NAMES = {3: "node name", 4: "op type", 7: "domain"}
_ATTRIBUTE_NAME, _ATTRIBUTE_S, _ATTRIBUTE_T = 1, 4, 5
_ATTRIBUTE_GRAPHS = {6, 11}
_ATTRIBUTE_FLOATS, _ATTRIBUTE_INTS = 7, 8
_ATTRIBUTE_STRINGS, _ATTRIBUTE_TENSORS = 9, 10
_TENSOR_DIMS, _TENSOR_NAME, _TENSOR_STRINGS = 1, 8, 6
_TENSOR_FIXED = {4: 4, 10: 8}        # float_data, double_data: item bytes
_TENSOR_VARINTS = {5, 7, 11}         # int32_data, int64_data, uint64_data
_TENSOR_RAW = 9
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5


class _StructureWalk:
    """One pass over a file's protobuf fields, counting what
    `check_structure` bounds and skipping every payload by its length."""

    def __init__(self, data, path):
        self.data, self.path = data, path
        self.fields = self.nodes = self.tensors = 0
        self.attribute_elements = self.varint_values = 0
        self.tensor_data_bytes = 0
        self.value_infos = dict.fromkeys(_GRAPH_VALUE_INFOS, 0)

    def refuse(self, problem):
        raise file_error(
            self.path, f"{problem} No model zoo file of these networks has "
            "that (see `keras_lrn.applications._onnx_wire`'s limits); the "
            "file is not one of them.", fix="")

    def varint(self, i, end):
        result = shift = 0
        while True:
            if i >= end or shift > 63:
                raise file_error(self.path, "The file is not a readable ONNX "
                                 "file (a malformed protobuf varint).")
            byte = self.data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, i
            shift += 7

    def each(self, start, end):
        """(field number, wire type, value or payload start, payload end)
        for each field in `data[start:end]`."""
        i = start
        while i < end:
            self.fields += 1
            if self.fields > MAX_FIELDS:
                self.refuse(f"The file has more than {MAX_FIELDS} protobuf "
                            "fields.")
            key, i = self.varint(i, end)
            number, wire = key >> 3, key & 7
            if wire == _VARINT:
                value, i = self.varint(i, end)
                yield number, wire, value, i
                continue
            if wire == _BYTES:
                length, i = self.varint(i, end)
                payload = i
            elif wire in (_FIXED64, _FIXED32):
                length, payload = (8 if wire == _FIXED64 else 4), i
            else:
                raise file_error(self.path, "The file is not a readable ONNX "
                                 f"file (protobuf wire type {wire}).")
            i = payload + length
            if i > end:
                raise file_error(self.path, "The file is not a readable ONNX "
                                 "file (truncated: a field runs past its "
                                 "message).")
            yield number, wire, payload, i

    def name(self, what, start, end):
        if end - start > MAX_NAME_BYTES:
            self.refuse(f"A {what} is {end - start} bytes long, more than "
                        f"{MAX_NAME_BYTES}.")

    def model(self, start, end):
        for number, wire, a, b in self.each(start, end):
            if number == _MODEL_GRAPH and wire == _BYTES:
                self.graph(a, b)

    def graph(self, start, end):
        for number, wire, a, b in self.each(start, end):
            if wire != _BYTES:
                continue
            if number == _GRAPH_NODE:
                self.nodes += 1
                if self.nodes > MAX_NODES:
                    self.refuse(f"The graph has more than {MAX_NODES} "
                                "nodes.")
                self.node(a, b)
            elif number == _GRAPH_INITIALIZER:
                self.tensor(a, b)
            elif number in _GRAPH_VALUE_INFOS:
                self.value_infos[number] += 1
                if self.value_infos[number] > MAX_VALUE_INFOS:
                    self.refuse(f"The graph has more than {MAX_VALUE_INFOS} "
                                f"{_GRAPH_VALUE_INFOS[number]}.")
                for field, kind, c, d in self.each(a, b):
                    if field == 1 and kind == _BYTES:  # ValueInfoProto.name
                        self.name("value name", c, d)

    def node(self, start, end):
        counts = {_NODE_INPUT: 0, _NODE_OUTPUT: 0, _NODE_ATTRIBUTE: 0}
        limits = {_NODE_INPUT: (MAX_NODE_ARITY, "inputs"),
                  _NODE_OUTPUT: (MAX_NODE_ARITY, "outputs"),
                  _NODE_ATTRIBUTE: (MAX_NODE_ATTRIBUTES, "attributes")}
        for number, wire, a, b in self.each(start, end):
            if wire != _BYTES:
                continue
            if number in counts:
                counts[number] += 1
                limit, what = limits[number]
                if counts[number] > limit:
                    self.refuse(f"A node has more than {limit} {what}.")
                if number == _NODE_ATTRIBUTE:
                    self.attribute(a, b)
                else:
                    self.name("node input or output name", a, b)
            elif number in _NODE_NAMES:
                self.name(_NODE_NAMES[number], a, b)

    def attribute(self, start, end):
        elements = 0
        for number, wire, a, b in self.each(start, end):
            if number == _ATTRIBUTE_NAME and wire == _BYTES:
                self.name("attribute name", a, b)
                continue
            if number in _ATTRIBUTE_GRAPHS:
                self.refuse("A node has a subgraph attribute.")
            if number == _ATTRIBUTE_S and wire == _BYTES:
                self.name("string attribute", a, b)
            elif number == _ATTRIBUTE_T and wire == _BYTES:
                self.tensor(a, b)
            elif number == _ATTRIBUTE_TENSORS and wire == _BYTES:
                elements += 1
                self.tensor(a, b)
            elif number == _ATTRIBUTE_STRINGS and wire == _BYTES:
                elements += 1
                self.name("string attribute", a, b)
            elif number in (_ATTRIBUTE_FLOATS, _ATTRIBUTE_INTS):
                if wire != _BYTES:  # one value
                    elements += 1
                elif number == _ATTRIBUTE_FLOATS:
                    elements += (b - a) // 4
                else:
                    elements += self.packed_varints(a, b,
                                                    MAX_ATTRIBUTE_ELEMENTS)
            if elements > MAX_ATTRIBUTE_ELEMENTS:
                self.refuse(f"An attribute has more than "
                            f"{MAX_ATTRIBUTE_ELEMENTS} elements.")
        self.attribute_elements += elements
        if self.attribute_elements > MAX_ATTRIBUTES_ELEMENTS:
            self.refuse(f"The attributes have more than "
                        f"{MAX_ATTRIBUTES_ELEMENTS} elements in all.")

    def packed_varints(self, start, end, limit):
        """The number of varints in `data[start:end]`, or `limit + 1` where
        there are surely more than `limit` (each takes 1 to 10 bytes)."""
        if end - start > 10 * limit:
            return limit + 1
        block = np.frombuffer(self.data[start:end], np.uint8)
        return int(np.count_nonzero(block < 0x80))

    def tensor(self, start, end):
        self.tensors += 1
        if self.tensors > MAX_TENSORS:
            self.refuse(f"The file stores more than {MAX_TENSORS} tensors.")
        dims = 0
        for number, wire, a, b in self.each(start, end):
            if number == _TENSOR_DIMS:
                dims += (1 if wire != _BYTES
                         else self.packed_varints(a, b, MAX_DIMS))
                if dims > MAX_DIMS:
                    self.refuse(f"A stored tensor has more than {MAX_DIMS} "
                                "dims.")
            elif number == _TENSOR_NAME and wire == _BYTES:
                self.name("tensor name", a, b)
            elif number == _TENSOR_STRINGS and wire == _BYTES:
                self.name("string value", a, b)
            elif number == _TENSOR_RAW and wire == _BYTES:
                self.tensor_data_bytes += b - a
            elif number in _TENSOR_FIXED and wire == _BYTES:
                self.tensor_data_bytes += b - a
            elif number in _TENSOR_VARINTS:
                self.varint_values += (
                    1 if wire != _BYTES else self.packed_varints(
                        a, b, MAX_VARINT_VALUES - self.varint_values))
                if self.varint_values > MAX_VARINT_VALUES:
                    self.refuse(f"The stored tensors hold more than "
                                f"{MAX_VARINT_VALUES} integers outside "
                                "raw_data.")


def check_structure(path):
    """Refuses, with a `ValueError` naming `path`, a file whose structure
    exceeds the limits above (`MAX_NODES` and siblings), from its
    serialized form: the walk maps the file read-only and reads its
    protobuf tags and lengths, copying only names and packed integers
    (each within its limit), so neither time nor memory grows with what a
    field holds; a file beyond a limit is refused at the first field past
    it."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            walk = _StructureWalk(data, path)
            walk.model(0, size)
    graph_bytes = size - walk.tensor_data_bytes
    if graph_bytes > MAX_GRAPH_BYTES:
        walk.refuse(f"Its graph (everything but tensor data) is "
                    f"{graph_bytes} bytes, more than {MAX_GRAPH_BYTES}.")

