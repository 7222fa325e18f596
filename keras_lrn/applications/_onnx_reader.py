"""Reading an ONNX file of the model zoo, bounded in bytes and structure.

Files are untrusted input. `read` first walks the file's serialized form
(the protobuf wire format, through a read-only memory map, copying nothing
but short strings) and refuses, before `onnx` parses anything, a file whose
structure lies outside what the zoo's networks need (`check_structure`: the
number of nodes, of inputs and outputs of a node, of attributes of a node,
the elements of each attribute and of all of them, the length of every
name, the number of stored tensors and their dims, the bytes of everything
but tensor data, and the fields walked). Only then does `onnx` parse the
file, without loading external data and reading no weight: `read` checks
the opset imports (ai.onnx alone, once, opsets 9 to 12), that every node
input is a graph input, a stored tensor or an earlier node's output, every
stored tensor's declared dims and byte count, and the bytes all the stored
tensors declare together against `MAX_BYTES`, before anything is
allocated; it returns the graph's node types, attributes and declared
weight shapes (a `ZooGraph`). `load` reads the weights, each stored tensor
once however many nodes name it, external data only from regular files
inside the model's folder (after resolving links), and refuses non-finite
values. Anything malformed raises `ValueError` naming the file and the
problem (`file_error`).

This module knows no network: `keras_lrn.applications.zoo` identifies and
verifies a `ZooGraph` against the networks' mappings and assigns its
weights. `onnx` is an optional dependency (`pip install "keras-lrn[onnx]"`),
imported only when a file is read.
"""

import dataclasses
import math
import mmap
import os
import stat

import numpy as np

OPSETS = range(9, 13)


# The most a file's stored tensors may declare, all together, in bytes: the
# zoo's largest network of these, zfnet512, stores 87.3M float32 weights
# (349.0 MB, 332.8 MiB). It is checked from the declared dims, before
# anything is read or allocated; the file itself may be this plus
# `MAX_GRAPH_BYTES` of graph.
MAX_BYTES = 352 * 2**20

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
# Stored tensors declaring at most this many bytes have their raw data's
# length checked by `read`; larger ones when `load` reads them.
_SIZED_NOW = 2**20

_QUANTIZED_OPS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
    "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
    "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
}
_FLOAT32, _INT64 = 1, 7              # onnx.TensorProto.FLOAT, .INT64
_INT8_TYPES = {2, 3}                 # UINT8, INT8
_DTYPES = {_FLOAT32: np.dtype("<f4"), _INT64: np.dtype("<i8")}
_DTYPE_NAMES = {_FLOAT32: "float32", _INT64: "int64"}
# bytes per element of every ONNX data type (onnx.TensorProto.DataType), for
# the budget; 4-bit types count a byte, unknown ones (and STRING) the most
_ITEMSIZES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8,
              12: 4, 13: 8, 14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1,
              21: 1, 22: 1, 23: 1, 24: 1, 25: 1, 26: 1}
_LARGEST_ITEMSIZE = 16
_ONNX_DOMAINS = {"", "ai.onnx"}

# attribute kinds (onnx.AttributeProto.AttributeType): FLOAT, INT, STRING,
# TENSOR, INTS
_FLOAT, _INT, _STRING, _TENSOR, _INTS = 1, 2, 3, 4, 7
_KIND_NAMES = {_FLOAT: "a float", _INT: "an int", _STRING: "a string",
               _TENSOR: "a tensor", _INTS: "ints"}
# The attributes this reader understands, with their kinds; any other
# attribute of these ops makes the graph unsupported.
_ATTRIBUTES = {
    "Conv": {"strides": _INTS, "pads": _INTS, "group": _INT,
             "dilations": _INTS, "kernel_shape": _INTS, "auto_pad": _STRING},
    "Gemm": {"alpha": _FLOAT, "beta": _FLOAT, "transA": _INT, "transB": _INT},
    "LRN": {"size": _INT, "alpha": _FLOAT, "beta": _FLOAT, "bias": _FLOAT},
    "MaxPool": {"kernel_shape": _INTS, "strides": _INTS, "pads": _INTS,
                "ceil_mode": _INT, "storage_order": _INT, "dilations": _INTS,
                "auto_pad": _STRING},
    "AveragePool": {"kernel_shape": _INTS, "strides": _INTS, "pads": _INTS,
                    "ceil_mode": _INT, "count_include_pad": _INT,
                    "auto_pad": _STRING},
    "Constant": {"value": _TENSOR},
}

@dataclasses.dataclass
class ZooGraph:
    """What `read` found in a file, before any weight is read: its weighted
    nodes (op, attributes, `StoredTensor`s with their declared shapes), its
    LRN nodes' and its pools' attributes, and `store`, which reads each
    stored tensor once when it is asked for (`load`)."""

    path: str
    weighted: list
    lrns: list
    pools: list
    store: object = None

    @property
    def fingerprint(self):
        ops = [op for op, _, _ in self.weighted]
        first = next((tensors[0].shape for op, _, tensors in self.weighted
                      if op == "Conv" and tensors), ())
        return ops.count("Conv"), ops.count("Gemm"), tuple(first)


@dataclasses.dataclass(frozen=True)
class StoredTensor:
    """A weight a node names: its declared shape (known without reading it)
    and, through `numpy.asarray`, its float32 values, read once from the
    file however many nodes name it."""

    name: str
    shape: tuple
    store: object = dataclasses.field(repr=False, compare=False)

    def __array__(self, dtype=None, copy=None):
        array = self.store.array(self.name)
        return array if dtype is None else array.astype(dtype)


REFETCH = ("Load the model zoo's original float32 file (download it again "
            "if this one was damaged or edited).")


def file_error(path, problem, fix=REFETCH):
    """A `ValueError` naming the file, the problem and what to do."""
    return ValueError(f"{problem} {fix} Received: path={path!r}".replace(
        "  ", " "))



# --------------------------------------------------------------------------
# The structure, from the serialized form, before anything is parsed
# --------------------------------------------------------------------------

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
            "that (see `keras_lrn.applications._onnx_reader`'s limits); the "
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


# --------------------------------------------------------------------------
# Reading a file: declarations first, data only once the graph is verified
# --------------------------------------------------------------------------

def read(path):
    """Parses the ONNX file `path` into a `ZooGraph` without reading any
    weight: the graph's node types, attributes and declared shapes, after
    checking its structure (`check_structure`, before `onnx` parses it),
    its opsets, that every node input is produced, every
    tensor's declared dims and the total declared bytes against
    `MAX_BYTES`. Every malformed file raises `ValueError` naming it and the
    problem."""
    try:
        import onnx  # the optional dependency, needed only to read a file
    except ImportError as e:
        raise ImportError(
            "Reading ONNX model zoo files needs the `onnx` package: "
            'pip install "keras-lrn[onnx]".'
        ) from e
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(
            f"`path` must be the path to an .onnx file. Received: path={path!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise file_error(path, "ONNX file not found (or not a regular file): "
                         "check the path (relative paths start at "
                         f"{os.getcwd()!r}).", fix="")
    size = os.path.getsize(path)
    if size == 0:
        raise file_error(path, "The ONNX file is empty (an interrupted "
                         "download?): download it again.", fix="")
    if size > MAX_BYTES + MAX_GRAPH_BYTES:
        raise file_error(
            path,
            f"The file is {size} bytes, more than the "
            f"{MAX_BYTES + MAX_GRAPH_BYTES} bytes a model zoo file "
            f"of these networks can be ({MAX_BYTES} bytes of "
            "weights and the graph); it is not one of them.",
            fix="")
    check_structure(path)
    # Nothing is read but the file itself: external data is left alone
    # (`_Store` reads it once the graph is verified), and the format is not
    # guessed from the file name.
    try:
        with open(path, "rb") as f:
            model = onnx.load_model(f, format="protobuf",
                                    load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and relatives
        raise file_error(
            path,
            "The file is not a readable ONNX file (truncated "
            f"or not an ONNX model: {type(e).__name__}: {e}).") from e
    if not model.HasField("graph") or not model.graph.node:
        raise file_error(
            path,
            "The file holds no ONNX graph (truncated or not "
            "an ONNX model).")
    nodes = list(model.graph.node)
    _check_float_model(model, nodes, path)
    _check_opsets(model, nodes, path)
    tensors = _stored_tensors(model, nodes, path)
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    _check_budget(tensors, path, folder)
    _check_inputs_are_produced(model, nodes, path)
    reshapes = {n.output[0]: n for n in nodes
                if n.op_type == "Reshape" and len(n.output) == 1
                and len(n.input) == 2}
    store = _Store(tensors, reshapes, path)

    graph = ZooGraph(path, [], [], [], store)
    for n in nodes:
        if n.op_type not in ("Conv", "Gemm", "LRN", "MaxPool", "AveragePool"):
            continue
        attrs = _attributes(n, path)
        if n.op_type in ("Conv", "Gemm"):
            if len(n.input) < 2 or not n.input[1]:
                raise file_error(
                    path,
                    f"The {n.op_type} node {n.name!r} has no "
                    "weight input: the file is not a model zoo graph.")
            stored = tuple(StoredTensor(name, store.shape(name, n), store)
                           for name in n.input[1:] if name)
            graph.weighted.append((n.op_type, attrs, stored))
        elif n.op_type == "LRN":
            graph.lrns.append(attrs)
        else:
            if "kernel_shape" not in attrs:
                raise file_error(
                    path,
                    f"The {n.op_type} node {n.name!r} has no "
                    "kernel_shape: the file is not a valid ONNX graph.")
            kernel = attrs["kernel_shape"]
            if attrs.get("dilations", (1,) * len(kernel)) != (1,) * len(kernel):
                raise file_error(path, f"The {n.op_type} node {n.name!r} is "
                                 "dilated; a model zoo graph's pools are not.")
            graph.pools.append((
                n.op_type, kernel,
                attrs.get("strides", (1,) * len(kernel)),
                attrs.get("pads", (0,) * 2 * len(kernel)),
                attrs.get("ceil_mode", 0),
                attrs.get("count_include_pad", 0),
            ))
    return graph


def _check_float_model(model, nodes, path):
    quantized = sorted({n.op_type for n in nodes} & _QUANTIZED_OPS)
    int_weights = [t.name for t in model.graph.initializer
                   if t.data_type in _INT8_TYPES]
    if quantized or int_weights:
        raise file_error(
            path,
            f"The file is a quantized (int8) model "
            f"({', '.join(quantized or int_weights[:3])}); only the model "
            "zoo's float32 files (e.g. `bvlcalexnet-12.onnx`, not "
            "`bvlcalexnet-12-int8.onnx`) can be loaded.", fix="")


def _check_opsets(model, nodes, path):
    """One opset import, ai.onnx's, of a supported version; every node in
    that domain."""
    imports = [(o.domain, o.version) for o in model.opset_import]
    others = [domain for domain, _ in imports if domain not in _ONNX_DOMAINS]
    if others:
        raise file_error(path, f"The file imports the opset domains {others} "
                         "beside ai.onnx; a model zoo file imports ai.onnx "
                         f"only. Received opset imports: {imports}.")
    versions = [version for domain, version in imports
                if domain in _ONNX_DOMAINS]
    if not versions:
        raise file_error(
            path,
            "The file declares no ai.onnx opset (truncated "
            "or not an ONNX model).")
    if len(versions) > 1:
        raise file_error(
            path,
            f"The file imports ai.onnx {len(versions)} times "
            f"(opsets {versions}); a model zoo file imports it "
            "once.")
    version = versions[0]
    if version not in OPSETS:
        raise file_error(
            path,
            f"The file has opset {version}; the model zoo's float32 files "
            f"of opsets {OPSETS.start} to {OPSETS.stop - 1} are supported.")
    domains = sorted({n.domain for n in nodes} - _ONNX_DOMAINS)
    if domains or len(model.functions):
        raise file_error(
            path,
            "The file has nodes of the domains "
            f"{domains or ['(local functions)']}, which no model zoo "
            "file of these networks uses.")


def _stored_tensors(model, nodes, path):
    """Initializers and `Constant` node values, by name (still protos, no
    data read)."""
    tensors = {}
    for t in model.graph.initializer:
        if t.name in tensors:
            raise file_error(path, f"The file stores two initializers named "
                             f"{t.name!r}.")
        tensors[t.name] = t
    for n in nodes:
        if n.op_type != "Constant":
            continue
        names = [a.name for a in n.attribute]
        if len(n.output) != 1 or names != ["value"]:
            raise file_error(
                path,
                f"The Constant node {n.name!r} has attributes {names} and "
                f"{len(n.output)} outputs; a model zoo file's Constant holds "
                "one tensor `value`.")
        tensors[n.output[0]] = _attributes(n, path)["value"]
    return tensors


def _check_budget(tensors, path, folder):
    """Every declared dims well-formed, every small tensor's stored byte
    count what its dims declare, external data where its declaration says,
    and all of them together within `MAX_BYTES`: from the declarations
    alone, before any tensor is read."""
    total = 0
    for tensor in tensors.values():
        total += _declared_bytes(tensor, path, folder)
    if total > MAX_BYTES:
        raise file_error(
            path,
            f"The file's stored tensors declare {total} bytes "
            f"in all, more than the {MAX_BYTES} bytes the model "
            "zoo's largest network of these needs; the file is not "
            "one of them (or was edited).", fix="")


def _declared_bytes(tensor, path, folder):
    what = f"The tensor {tensor.name!r}"
    dims = [int(d) for d in tensor.dims]
    itemsize = _ITEMSIZES.get(tensor.data_type, _LARGEST_ITEMSIZE)
    limit = MAX_BYTES // itemsize
    # each dim on its own (a zero elsewhere must not hide a huge one), then
    # the product, in Python integers (no overflow)
    if any(d < 0 or d > limit for d in dims):
        raise file_error(
            path,
            f"{what} declares the dims {dims}: a dim is "
            f"negative or beyond the {limit} elements that "
            f"{MAX_BYTES} bytes (the budget of all stored tensors) "
            "hold.")
    count = math.prod(dims)
    nbytes = count * itemsize
    if nbytes > MAX_BYTES:
        raise file_error(
            path,
            f"{what} declares the dims {dims}: {count} "
            f"elements, {nbytes} bytes, more than the {MAX_BYTES} "
            "bytes the model zoo's largest network of these needs "
            "for all its stored tensors.", fix="")
    if tensor.HasField("segment"):
        raise file_error(path, f"{what} is segmented, which this reader does "
                         "not support.")
    if tensor.data_location == 1:  # onnx.TensorProto.EXTERNAL
        _external_bytes(tensor, nbytes, path, folder, read=False)
        return nbytes
    if tensor.data_location != 0:
        raise file_error(path, f"{what} has an unknown data_location.")
    if tensor.data_type not in _DTYPES:
        return nbytes  # refused by `_Store` if a node uses it as a weight
    if tensor.HasField("raw_data") and nbytes > _SIZED_NOW:
        # measuring raw_data copies it (protobuf's ByteSize serializes the
        # tensor): large tensors are measured when `load` reads them, once
        # the graph is verified
        return nbytes
    held = _raw_length(tensor, path)
    if held is None:
        values = (tensor.float_data if tensor.data_type == _FLOAT32
                  else tensor.int64_data)
        if len(values) != count:
            raise file_error(path, f"{what} declares {count} values for the "
                             f"dims {dims} and holds {len(values)}.")
    elif held != nbytes:
        raise file_error(path, f"{what} declares the dims {dims} ({nbytes} "
                         f"bytes) and holds {held} bytes.")
    return nbytes


_HEAD_FIELDS = {"name", "dims", "data_type", "doc_string", "data_location"}


def _raw_length(tensor, path):
    """The length of the tensor's `raw_data`, None if it has none, from the
    serialized sizes: reading `raw_data` itself would copy it."""
    if not tensor.HasField("raw_data"):
        return None
    from google.protobuf import unknown_fields

    # (ListFields would copy raw_data too)
    fields = {f.name for f in tensor.DESCRIPTOR.fields
              if (len(getattr(tensor, f.name)) if _repeated(f)
                  else tensor.HasField(f.name))}
    if fields - _HEAD_FIELDS - {"raw_data"} or len(
            unknown_fields.UnknownFieldSet(tensor)):
        raise file_error(
            path,
            f"The tensor {tensor.name!r} holds raw data beside "
            f"other fields ({sorted(fields)}); a model zoo file's "
            "tensors hold raw data alone.")
    head = type(tensor)()
    for name in fields - {"raw_data", "dims"}:
        setattr(head, name, getattr(tensor, name))
    head.dims.extend(tensor.dims)
    # raw_data (field 9) takes a tag byte, its length as a varint, the bytes
    rest = tensor.ByteSize() - head.ByteSize() - 1
    for varint in range(1, 11):
        if (rest - varint).bit_length() <= 7 * varint:
            return rest - varint
    return rest


def _repeated(field):
    if hasattr(field, "is_repeated"):  # protobuf >= 6.31
        return field.is_repeated
    return field.label == field.LABEL_REPEATED


def _check_inputs_are_produced(model, nodes, path):
    """Every node input is a graph input, a stored tensor or an earlier
    node's output."""
    produced = ({i.name for i in model.graph.input}
                | {t.name for t in model.graph.initializer})
    for n in nodes:
        dangling = [name for name in n.input if name and name not in produced]
        if dangling:
            raise file_error(
                path,
                f"The {n.op_type} node {n.name!r} reads "
                f"{dangling}, which no initializer, graph input or "
                "earlier node produces: the graph is broken.")
        produced.update(n.output)


def _attributes(node, path):
    """The node's attributes as Python values, each of the kind ONNX gives
    it; unknown or mistyped attributes raise `ValueError`."""
    known = _ATTRIBUTES[node.op_type]
    values = {}
    for a in node.attribute:
        kind = known.get(a.name)
        if kind is None:
            raise file_error(
                path,
                f"The {node.op_type} node {node.name!r} has "
                f"the attribute {a.name!r}, which this reader does "
                "not support; the file is not a model zoo graph.")
        if a.type != kind or a.name in values:
            raise file_error(
                path,
                f"The {node.op_type} node {node.name!r} has a "
                f"malformed attribute {a.name!r} (expected one, "
                f"{_KIND_NAMES[kind]}).")
        if kind == _FLOAT:
            values[a.name] = float(a.f)
        elif kind == _INT:
            values[a.name] = int(a.i)
        elif kind == _INTS:
            values[a.name] = tuple(int(i) for i in a.ints)
        elif kind == _STRING:
            values[a.name] = bytes(a.s)
        else:
            values[a.name] = a.t
    if values.pop("auto_pad", b"NOTSET") not in (b"NOTSET", b""):
        raise file_error(path, f"The {node.op_type} node {node.name!r} uses "
                         "auto_pad; a model zoo graph gives explicit pads.")
    return values


class _Store:
    """The graph's stored tensors: their declared shapes (reshaped where
    the graph reshapes a stored tensor, GoogLeNet's classifier) without
    reading them, and their float32 values, each read once and shared by
    every node that names it."""

    def __init__(self, tensors, reshapes, path):
        self.tensors, self.reshapes, self.path = tensors, reshapes, path
        self.folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        self.arrays = {}
        self.reads = 0  # stored tensors read so far (each at most once)

    def shape(self, name, node, depth=0):
        """The declared shape of the weight `name` that `node` reads."""
        if name in self.tensors:
            _check_data_type(self.tensors[name], _FLOAT32, self.path)
            return tuple(int(d) for d in self.tensors[name].dims)
        reshape = self.reshapes.get(name)
        if reshape is not None and depth < 4:
            data, shape = reshape.input
            if data in self.tensors or data in self.reshapes:
                source = self.shape(data, node, depth + 1)
                return _reshaped(source, self._target(reshape), reshape,
                                 self.path)
        raise file_error(
            self.path,
            f"The weights {name!r} of the {node.op_type} node {node.name!r} "
            "are computed by the graph, not stored in it (a weight-stripped "
            "test file?); a model zoo file stores them as initializers.")

    def _target(self, reshape):
        shape = reshape.input[1]
        tensor = self.tensors.get(shape)
        if tensor is None:
            raise file_error(
                self.path,
                f"The Reshape node {reshape.name!r} has "
                "no stored shape.")
        _check_data_type(tensor, _INT64, self.path)
        if len(tensor.dims) != 1 or not 0 < tensor.dims[0] <= 8:
            raise file_error(
                self.path,
                f"The Reshape node {reshape.name!r} has "
                f"a shape of dims {list(tensor.dims)}; a model zoo "
                "graph reshapes to at most 8 dims.")
        return self._read(shape, _INT64)

    def array(self, name):
        """The float32 values of the weight `name`, read once."""
        if name not in self.arrays:
            if name in self.tensors:
                array = self._read(name, _FLOAT32)
            else:  # a reshaped stored tensor: `shape` checked it
                reshape = self.reshapes[name]
                array = self.array(reshape.input[0]).reshape(
                    _reshaped(self.arrays[reshape.input[0]].shape,
                              self._target(reshape), reshape, self.path))
            self.arrays[name] = array
        return self.arrays[name]

    def _read(self, name, data_type):
        tensor = self.tensors[name]
        array = _to_array(tensor, data_type, self.path, self.folder)
        self.reads += 1
        if data_type == _FLOAT32 and not np.isfinite(array).all():
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise file_error(self.path, f"The tensor {name!r} holds {bad} "
                             "non-finite values (NaN or Inf) among its "
                             f"{array.size}: a model zoo file's weights are "
                             "finite.")
        return array


def _reshaped(source, target, node, path):
    """The shape `node` (a Reshape of a stored tensor of shape `source`)
    gives, checked."""
    shape = [int(s) for s in target.reshape(-1)]
    if target.ndim != 1 or any(s < -1 for s in shape) or shape.count(-1) > 1:
        raise file_error(
            path,
            f"The Reshape node {node.name!r} has the invalid "
            f"shape {shape}.")
    size = math.prod(source)
    shape = [source[i] if s == 0 and i < len(source) else s
             for i, s in enumerate(shape)]
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape and known:
        shape[shape.index(-1)] = size // known
    elif -1 in shape:
        raise file_error(path, f"The Reshape node {node.name!r} has the shape "
                         f"{shape}, whose -1 cannot be inferred.")
    if math.prod(shape) != size:
        raise file_error(path, f"The Reshape node {node.name!r} reshapes "
                         f"{tuple(source)} to {shape}: the sizes differ.")
    return tuple(shape)


def _check_data_type(tensor, data_type, path):
    if tensor.data_type != data_type:
        raise file_error(
            path,
            f"The tensor {tensor.name!r} has ONNX data type "
            f"{tensor.data_type}, expected "
            f"{_DTYPE_NAMES[data_type]}: only the model zoo's "
            "float32 files can be loaded.")


def _to_array(tensor, data_type, path, folder):
    """The tensor's values; `_check_budget` checked its dims and byte count."""
    what = f"The tensor {tensor.name!r}"
    _check_data_type(tensor, data_type, path)
    dims = [int(d) for d in tensor.dims]
    dtype, count = _DTYPES[data_type], math.prod(dims)
    if tensor.data_location == 1:  # onnx.TensorProto.EXTERNAL
        raw = _external_bytes(tensor, count * dtype.itemsize, path, folder)
    elif tensor.HasField("raw_data"):
        raw = tensor.raw_data
    else:
        values = tensor.float_data if data_type == _FLOAT32 else tensor.int64_data
        return np.asarray(values, dtype=dtype).reshape(dims)
    if len(raw) != count * dtype.itemsize:
        raise file_error(path, f"{what} declares the dims {dims} "
                         f"({count * dtype.itemsize} bytes) and holds "
                         f"{len(raw)} bytes.")
    return np.frombuffer(raw, dtype=dtype).reshape(dims)


def _external_bytes(tensor, size, path, folder, read=True):
    """The tensor's external data, only from a regular file inside the
    model's folder, links resolved; with `read=False`, only the checks,
    from `os.stat` (nothing is opened or read)."""
    what = f"The tensor {tensor.name!r}"
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    try:
        offset = int(entries.get("offset", 0))
        length = int(entries.get("length", size))
    except ValueError:
        raise file_error(path, f"{what} has a malformed external-data offset "
                         "or length.") from None
    try:
        target = os.path.realpath(os.path.join(folder, location))
    except ValueError:  # e.g. a NUL byte in the name
        target = folder
    if (not location or os.path.isabs(location)
            or os.path.commonpath([target, folder]) != folder
            or target == folder):
        raise file_error(
            path,
            f"{what} stores its data in {location!r}, which "
            "is not a file inside the model's folder (after "
            "resolving links); keep the data file beside the model.",
            fix="")

    def check(info):
        if not stat.S_ISREG(info.st_mode):
            raise file_error(path, f"{what} stores its data in {location!r}, "
                             "which is not a regular file.")
        if offset < 0 or length != size or offset + length > info.st_size:
            raise file_error(path, f"{what} needs {size} bytes of external "
                             f"data; {location!r} (of {info.st_size} bytes) "
                             f"declares {length} at offset {offset}.")

    try:
        check(os.stat(target))  # before opening: a FIFO would block
        if not read:
            return None
        with open(target, "rb") as f:
            check(os.fstat(f.fileno()))  # the file opened is still one
            f.seek(offset)
            return f.read(length)
    except OSError as e:
        raise file_error(
            path,
            f"{what}'s external data {location!r} cannot be "
            f"read: {e}.") from e


def load(graph):
    """Reads the weights of the verified `graph`'s weighted nodes, each
    stored tensor once however many nodes name it; raises `ValueError`
    naming the file for data that does not match its declaration or is not
    finite."""
    for _, _, tensors in graph.weighted:
        for tensor in tensors:
            graph.store.array(tensor.name)
