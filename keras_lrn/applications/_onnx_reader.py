"""Reading an ONNX file of the model zoo into a `ZooGraph`, bounded in
bytes and structure.

`read` first refuses a file beyond the zoo networks' structure from its
serialized form, before `onnx` parses anything
(`keras_lrn.applications._onnx_wire.check_structure`). Only then does
`onnx` parse the file, without loading external data and reading no
weight: `read` checks the opset imports (ai.onnx alone, once, opsets 9 to
12), that every node input is a graph input, a stored tensor or an earlier
node's output, and every stored tensor's declared dims and byte count and
the bytes all of them declare together against the budget
(`keras_lrn.applications._onnx_tensors.check_budget`, `MAX_BYTES`), before
anything is allocated; it returns the graph's node types, attributes and
declared weight shapes (a `ZooGraph`). `load` reads the weights through
the graph's `TensorStore` (`keras_lrn.applications._onnx_tensors`): each
stored tensor once however many nodes name it, external data only from
regular files inside the model's folder (after resolving links), and
refusing non-finite values. Anything malformed raises `ValueError` naming
the file and the problem (`file_error`).

This module knows no network: `keras_lrn.applications.zoo` identifies and
verifies a `ZooGraph` against the networks' mappings and assigns its
weights. `onnx` is an optional dependency (`pip install "keras-lrn[onnx]"`),
imported only when a file is read.
"""

import dataclasses
import os

from keras_lrn.applications._onnx_tensors import MAX_BYTES
from keras_lrn.applications._onnx_tensors import StoredTensor
from keras_lrn.applications._onnx_tensors import TensorStore
from keras_lrn.applications._onnx_tensors import check_budget
from keras_lrn.applications._onnx_wire import MAX_GRAPH_BYTES
from keras_lrn.applications._onnx_wire import check_structure
from keras_lrn.applications._onnx_wire import file_error

__all__ = ["ZooGraph", "load", "read"]

OPSETS = range(9, 13)

_QUANTIZED_OPS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
    "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
    "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
}
_INT8_TYPES = {2, 3}                 # UINT8, INT8
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
    # (`TensorStore` reads it once the graph is verified), and the format is not
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
    try:
        return _zoo_graph(model, path)
    except UnicodeDecodeError as e:  # protobuf decodes strings when read
        raise file_error(
            path,
            "The file is not a readable ONNX file (a name or string in it "
            f"is not UTF-8 text: {e}).") from e


def _zoo_graph(model, path):
    """The `ZooGraph` of the parsed `model`, after the checks `read`
    describes."""
    nodes = list(model.graph.node)
    _check_float_model(model, nodes, path)
    _check_opsets(model, nodes, path)
    tensors = _stored_tensors(model, nodes, path)
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    check_budget(tensors, path, folder)
    _check_inputs_are_produced(model, nodes, path)
    reshapes = {n.output[0]: n for n in nodes
                if n.op_type == "Reshape" and len(n.output) == 1
                and len(n.input) == 2}
    store = TensorStore(tensors, reshapes, path)

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


def load(graph):
    """Reads the weights of the verified `graph`'s weighted nodes, each
    stored tensor once however many nodes name it; raises `ValueError`
    naming the file for data that does not match its declaration or is not
    finite."""
    for _, _, tensors in graph.weighted:
        for tensor in tensors:
            graph.store.array(tensor.name)
