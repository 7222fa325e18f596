"""Reading the ONNX model zoo's trained LRN networks into Keras models.

The ONNX model zoo (https://github.com/onnx/models) publishes ImageNet
networks with Local Response Normalization converted from Caffe and Caffe2.
This module reads such a file (the user downloads it; nothing is downloaded
here) and knows no network: each builder module declares its network's zoo
graph as plain data, a mapping `ZOO` beside its architecture (its weighted
layers in graph order with their weight shapes and convolution attributes,
its pools and LRN attributes; see `ZooNetwork.from_mapping`), and the package's `__init__`
pairs each builder with its mapping through `with_zoo_weights` and lists
them in one table, `ZOO_NETWORKS`. Nothing here imports a builder.

Files are untrusted input, read in two steps. `read` parses the file
without loading external data and reads no weight: it checks the opset
imports (ai.onnx alone, once, opsets 9 to 12), that every node input is a
graph input, a stored tensor or an earlier node's output, every stored
tensor's declared dims and byte count, and the bytes all the stored tensors
declare together against `MAX_BYTES`, before anything is allocated; it
returns the graph's node types, attributes and declared weight shapes.
`identify` and `verify` recognize the network and check it against a
`ZooNetwork` (every weight shape, convolution, pool and LRN) from those
declarations alone. Only then `load` reads the weights, each stored tensor
once however many nodes name it, external data only from regular files
inside the model's folder (after resolving links), and refuses non-finite
values; `assign` puts them into the builder's model. Anything malformed
raises `ValueError` naming the file and the problem.

`onnx` is an optional dependency (`pip install "keras-lrn[onnx]"`), imported
only when a file is read.
"""

import dataclasses
import functools
import inspect
import math
import os
import stat

import numpy as np

from keras_lrn.applications import _common

OPSETS = range(9, 13)

# The most a file's stored tensors may declare, all together, in bytes: the
# zoo's largest network of these, zfnet512, stores 87.3M float32 weights
# (349.0 MB, 332.8 MiB). It is checked from the declared dims, before
# anything is read or allocated; the file itself may be this plus
# `_GRAPH_BYTES` of graph.
MAX_BYTES = 352 * 2**20
_GRAPH_BYTES = 16 * 2**20
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
_CONV_DEFAULTS = {"strides": (1, 1), "pads": (0, 0, 0, 0), "group": 1,
                  "dilations": (1, 1)}
_GEMM_DEFAULTS = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
_LRN_DEFAULTS = {"alpha": 1e-4, "beta": 0.75, "bias": 1.0}


# --------------------------------------------------------------------------
# A network's zoo graph, from the plain mapping its builder module declares
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ZooLayer:
    """A weighted node of a zoo graph and the Keras layer it maps to.

    Attributes:
        name: the Keras layer (built by `_common.conv` / `_common.dense`).
        op: `"Conv"` or `"Gemm"`.
        shapes: the file's weight and bias shapes (ONNX layout).
        attributes: the node's attributes, defaults included.
        flattened_from: for the first `Gemm` after a flatten, the `(C, H,
            W)` feature map the file flattens channel-major.
    """

    name: str
    op: str
    shapes: tuple
    attributes: tuple
    flattened_from: tuple = None


@dataclasses.dataclass(frozen=True)
class ZooNetwork:
    """A zoo network's graph, paired with the builder of its architecture.

    Attributes:
        name: the network's name in messages, e.g. `"bvlc_alexnet"`.
        builder: makes the matching Keras model: the package's builder with
            `arguments` bound; takes the builders' other keyword arguments
            (`classifier_activation`, `name`, `weights`, ...).
        arguments: the builder arguments that select the zoo's
            architecture, e.g. `{"variant": "bvlc"}`.
        layers: the `ZooLayer`s in graph order.
        pools: the pooling nodes in graph order, as `read` reports them
            (op, kernel, strides, pads, ceil_mode, count_include_pad).
        lrn: the LRN nodes' ONNX attributes (`size`, `alpha`, `beta`,
            `bias`), the same for each.
        lrn_count: how many LRN nodes the graph has.
    """

    name: str
    builder: object
    arguments: dict
    layers: tuple
    pools: tuple
    lrn: dict
    lrn_count: int

    @property
    def fingerprint(self):
        """How a file is recognized: numbers of Conv and Gemm nodes and the
        first convolution's weight shape."""
        ops = [layer.op for layer in self.layers]
        first = next(layer.shapes[0] for layer in self.layers
                     if layer.op == "Conv")
        return ops.count("Conv"), ops.count("Gemm"), first

    @classmethod
    def from_mapping(cls, builder, mapping):
        """The `ZooNetwork` of the plain `mapping` a builder module declares.

        `mapping` is a dict:

        - `"name"`: the network's name in messages;
        - `"arguments"`: the builder arguments that select the zoo's
          architecture (`{"variant": "bvlc"}`; `{}` if there is one);
        - `"layers"`: the graph's `Conv` and `Gemm` nodes in graph order,
          each a dict with `"name"` (the Keras layer), `"op"`, `"weights"`
          (the file's weight shape: `(filters, channels // group, kh, kw)`
          or `(units, inputs)`) and, for a `Conv`, optional square
          `"strides"` (1), equal `"pads"` on every side (0) and `"group"`
          (1); for the `Gemm` after a flatten, `"flattened_from"`, the
          `(C, H, W)` map it flattens channel-major;
        - `"pools"`: the `MaxPool` / `AveragePool` nodes in graph order,
          each a dict with `"op"`, square `"kernel"` and `"strides"`, and
          optional `"pads"` `(top, left, bottom, right)` (zeros);
        - `"lrn"`: the LRN nodes' ONNX attributes (`size`, `alpha`,
          `beta`, `bias`), and `"lrn_count"`, their number.

        `builder` is called as `builder(**mapping["arguments"], **kwargs)`.
        """
        _check_keys(mapping, _MAPPING_KEYS, _MAPPING_KEYS, "mapping")
        layers = tuple(_layer(entry) for entry in mapping["layers"])
        pools = tuple(_pool(entry) for entry in mapping["pools"])
        arguments = dict(mapping["arguments"])
        return cls(
            name=mapping["name"],
            builder=functools.partial(builder, **arguments),
            arguments=arguments,
            layers=layers,
            pools=pools,
            lrn=dict(mapping["lrn"]),
            lrn_count=mapping["lrn_count"],
        )


_MAPPING_KEYS = {"name", "arguments", "layers", "pools", "lrn", "lrn_count"}
_LAYER_KEYS = {"Conv": {"name", "op", "weights", "strides", "pads", "group"},
               "Gemm": {"name", "op", "weights", "flattened_from"}}
_POOL_KEYS = {"op", "kernel", "strides", "pads"}


def _check_keys(entry, required, allowed, what):
    if not isinstance(entry, dict) or not (required <= set(entry) <= allowed):
        raise ValueError(
            f"A zoo {what} must be a dict with the keys {sorted(required)} "
            f"and optionally {sorted(allowed - required)}. Received: "
            f"{what}={entry!r}")


def _layer(entry):
    op = entry.get("op") if isinstance(entry, dict) else None
    if op not in _LAYER_KEYS:
        raise ValueError(
            "A zoo layer's op must be 'Conv' or 'Gemm'. Received: "
            f"layer={entry!r}")
    _check_keys(entry, {"name", "op", "weights"}, _LAYER_KEYS[op], "layer")
    weights = tuple(entry["weights"])
    if op == "Conv":
        strides, pads = entry.get("strides", 1), entry.get("pads", 0)
        attributes = dict(_CONV_DEFAULTS, strides=(strides, strides),
                          pads=(pads,) * 4, group=entry.get("group", 1))
        return ZooLayer(entry["name"], op, (weights, weights[:1]),
                        tuple(sorted(attributes.items())))
    attributes = dict(_GEMM_DEFAULTS, transB=1)  # x @ W.T + b
    flattened_from = entry.get("flattened_from")
    return ZooLayer(entry["name"], op, (weights, weights[:1]),
                    tuple(sorted(attributes.items())),
                    None if flattened_from is None else tuple(flattened_from))


def _pool(entry):
    _check_keys(entry, {"op", "kernel", "strides"}, _POOL_KEYS, "pool")
    kernel, strides = entry["kernel"], entry["strides"]
    return (entry["op"], (kernel, kernel), (strides, strides),
            tuple(entry.get("pads", (0, 0, 0, 0))), 0, 0)


def is_onnx_path(weights):
    """Whether `weights` names an `.onnx` file."""
    return (isinstance(weights, (str, os.PathLike))
            and os.fspath(weights).lower().endswith(".onnx"))


def with_zoo_weights(builder, mapping):
    """`builder`, also loading the ONNX model zoo's file of `mapping`.

    Returns a function with `builder`'s name, signature and docstring
    (`functools.wraps`). Given a `weights` path ending in `.onnx`, it
    checks that the arguments select the zoo's architecture
    (`mapping["arguments"]`), reads the file's graph and verifies it
    against the mapping (fingerprint, every weight shape, convolution,
    pool and LRN), then reads its weights (`load`), all before anything is
    built, then builds with `builder(..., weights=None)` (which validates
    the other arguments, once) and loads the file's weights into the
    model. Any other `weights` goes to
    `builder` as given.

    The returned function's `zoo_network` is its `ZooNetwork` (see
    `ZooNetwork.from_mapping`), whose `builder` is the returned function
    with the mapping's arguments bound.
    """
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def build_with_zoo_weights(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        weights = bound.arguments.get("weights")
        if not is_onnx_path(weights):
            return builder(*args, **kwargs)
        bound.apply_defaults()
        _check_arguments(zoo_network, bound.arguments, os.fspath(weights))
        graph = read(weights)
        verify(graph, zoo_network)
        load(graph)
        bound.arguments["weights"] = None
        return assign(builder(*bound.args, **bound.kwargs), graph,
                      zoo_network)

    zoo_network = ZooNetwork.from_mapping(build_with_zoo_weights, mapping)
    build_with_zoo_weights.zoo_network = zoo_network
    return build_with_zoo_weights


def _check_arguments(zoo_network, arguments, path):
    """The builder's arguments select the architecture the file holds."""
    wanted = zoo_network.arguments
    if all(arguments.get(k) == v for k, v in wanted.items()):
        return
    selection = ", ".join(f"{k}={v!r}" for k, v in wanted.items())
    received = ", ".join(f"{k}={arguments.get(k)!r}" for k in wanted)
    raise ValueError(
        f"`weights` is an ONNX file: the model zoo's {zoo_network.name} "
        f"loads with {selection}; pass {selection} or use "
        "`keras_lrn.applications.from_onnx_zoo(path)`. Received: "
        f"weights={path!r}, {received}")


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


_REFETCH = ("Load the model zoo's original float32 file (download it again "
            "if this one was damaged or edited).")


def _error(path, problem, fix=_REFETCH):
    """A `ValueError` naming the file, the problem and what to do."""
    return ValueError(f"{problem} {fix} Received: path={path!r}".replace(
        "  ", " "))


# --------------------------------------------------------------------------
# Reading a file: declarations first, data only once the graph is verified
# --------------------------------------------------------------------------

def read(path):
    """Parses the ONNX file `path` into a `ZooGraph` without reading any
    weight: the graph's node types, attributes and declared shapes, after
    checking its opsets, that every node input is produced, every
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
        raise _error(path, "ONNX file not found (or not a regular file): "
                     "check the path (relative paths start at "
                     f"{os.getcwd()!r}).", fix="")
    size = os.path.getsize(path)
    if size == 0:
        raise _error(path, "The ONNX file is empty (an interrupted "
                     "download?): download it again.", fix="")
    if size > MAX_BYTES + _GRAPH_BYTES:
        raise _error(path, f"The file is {size} bytes, more than the "
                     f"{MAX_BYTES + _GRAPH_BYTES} bytes a model zoo file "
                     f"of these networks can be ({MAX_BYTES} bytes of "
                     "weights and the graph); it is not one of them.",
                     fix="")
    # Nothing is read but the file itself: external data is left alone
    # (`_Store` reads it once the graph is verified), and the format is not
    # guessed from the file name.
    try:
        with open(path, "rb") as f:
            model = onnx.load_model(f, format="protobuf",
                                    load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and relatives
        raise _error(path, "The file is not a readable ONNX file (truncated "
                     f"or not an ONNX model: {type(e).__name__}: {e}).") from e
    if not model.HasField("graph") or not model.graph.node:
        raise _error(path, "The file holds no ONNX graph (truncated or not "
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
                raise _error(path, f"The {n.op_type} node {n.name!r} has no "
                             "weight input: the file is not a model zoo graph.")
            stored = tuple(StoredTensor(name, store.shape(name, n), store)
                           for name in n.input[1:] if name)
            graph.weighted.append((n.op_type, attrs, stored))
        elif n.op_type == "LRN":
            graph.lrns.append(attrs)
        else:
            if "kernel_shape" not in attrs:
                raise _error(path, f"The {n.op_type} node {n.name!r} has no "
                             "kernel_shape: the file is not a valid ONNX graph.")
            kernel = attrs["kernel_shape"]
            if attrs.get("dilations", (1,) * len(kernel)) != (1,) * len(kernel):
                raise _error(path, f"The {n.op_type} node {n.name!r} is "
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
        raise _error(
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
        raise _error(path, f"The file imports the opset domains {others} "
                     "beside ai.onnx; a model zoo file imports ai.onnx "
                     f"only. Received opset imports: {imports}.")
    versions = [version for domain, version in imports
                if domain in _ONNX_DOMAINS]
    if not versions:
        raise _error(path, "The file declares no ai.onnx opset (truncated "
                     "or not an ONNX model).")
    if len(versions) > 1:
        raise _error(path, f"The file imports ai.onnx {len(versions)} times "
                     f"(opsets {versions}); a model zoo file imports it "
                     "once.")
    version = versions[0]
    if version not in OPSETS:
        raise _error(
            path,
            f"The file has opset {version}; the model zoo's float32 files "
            f"of opsets {OPSETS.start} to {OPSETS.stop - 1} are supported.")
    domains = sorted({n.domain for n in nodes} - _ONNX_DOMAINS)
    if domains or len(model.functions):
        raise _error(path, "The file has nodes of the domains "
                     f"{domains or ['(local functions)']}, which no model zoo "
                     "file of these networks uses.")


def _stored_tensors(model, nodes, path):
    """Initializers and `Constant` node values, by name (still protos, no
    data read)."""
    tensors = {}
    for t in model.graph.initializer:
        if t.name in tensors:
            raise _error(path, f"The file stores two initializers named "
                         f"{t.name!r}.")
        tensors[t.name] = t
    for n in nodes:
        if n.op_type != "Constant":
            continue
        names = [a.name for a in n.attribute]
        if len(n.output) != 1 or names != ["value"]:
            raise _error(
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
        raise _error(path, f"The file's stored tensors declare {total} bytes "
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
        raise _error(path, f"{what} declares the dims {dims}: a dim is "
                     f"negative or beyond the {limit} elements that "
                     f"{MAX_BYTES} bytes (the budget of all stored tensors) "
                     "hold.")
    count = math.prod(dims)
    nbytes = count * itemsize
    if nbytes > MAX_BYTES:
        raise _error(path, f"{what} declares the dims {dims}: {count} "
                     f"elements, {nbytes} bytes, more than the {MAX_BYTES} "
                     "bytes the model zoo's largest network of these needs "
                     "for all its stored tensors.", fix="")
    if tensor.HasField("segment"):
        raise _error(path, f"{what} is segmented, which this reader does "
                     "not support.")
    if tensor.data_location == 1:  # onnx.TensorProto.EXTERNAL
        _external_bytes(tensor, nbytes, path, folder, read=False)
        return nbytes
    if tensor.data_location != 0:
        raise _error(path, f"{what} has an unknown data_location.")
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
            raise _error(path, f"{what} declares {count} values for the "
                         f"dims {dims} and holds {len(values)}.")
    elif held != nbytes:
        raise _error(path, f"{what} declares the dims {dims} ({nbytes} "
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
        raise _error(path, f"The tensor {tensor.name!r} holds raw data beside "
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
            raise _error(path, f"The {n.op_type} node {n.name!r} reads "
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
            raise _error(path, f"The {node.op_type} node {node.name!r} has "
                         f"the attribute {a.name!r}, which this reader does "
                         "not support; the file is not a model zoo graph.")
        if a.type != kind or a.name in values:
            raise _error(path, f"The {node.op_type} node {node.name!r} has a "
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
        raise _error(path, f"The {node.op_type} node {node.name!r} uses "
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
        raise _error(
            self.path,
            f"The weights {name!r} of the {node.op_type} node {node.name!r} "
            "are computed by the graph, not stored in it (a weight-stripped "
            "test file?); a model zoo file stores them as initializers.")

    def _target(self, reshape):
        shape = reshape.input[1]
        tensor = self.tensors.get(shape)
        if tensor is None:
            raise _error(self.path, f"The Reshape node {reshape.name!r} has "
                         "no stored shape.")
        _check_data_type(tensor, _INT64, self.path)
        if len(tensor.dims) != 1 or not 0 < tensor.dims[0] <= 8:
            raise _error(self.path, f"The Reshape node {reshape.name!r} has "
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
            raise _error(self.path, f"The tensor {name!r} holds {bad} "
                         "non-finite values (NaN or Inf) among its "
                         f"{array.size}: a model zoo file's weights are "
                         "finite.")
        return array


def _reshaped(source, target, node, path):
    """The shape `node` (a Reshape of a stored tensor of shape `source`)
    gives, checked."""
    shape = [int(s) for s in target.reshape(-1)]
    if target.ndim != 1 or any(s < -1 for s in shape) or shape.count(-1) > 1:
        raise _error(path, f"The Reshape node {node.name!r} has the invalid "
                     f"shape {shape}.")
    size = math.prod(source)
    shape = [source[i] if s == 0 and i < len(source) else s
             for i, s in enumerate(shape)]
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape and known:
        shape[shape.index(-1)] = size // known
    elif -1 in shape:
        raise _error(path, f"The Reshape node {node.name!r} has the shape "
                     f"{shape}, whose -1 cannot be inferred.")
    if math.prod(shape) != size:
        raise _error(path, f"The Reshape node {node.name!r} reshapes "
                     f"{tuple(source)} to {shape}: the sizes differ.")
    return tuple(shape)


def _check_data_type(tensor, data_type, path):
    if tensor.data_type != data_type:
        raise _error(path, f"The tensor {tensor.name!r} has ONNX data type "
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
        raise _error(path, f"{what} declares the dims {dims} "
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
        raise _error(path, f"{what} has a malformed external-data offset "
                     "or length.") from None
    try:
        target = os.path.realpath(os.path.join(folder, location))
    except ValueError:  # e.g. a NUL byte in the name
        target = folder
    if (not location or os.path.isabs(location)
            or os.path.commonpath([target, folder]) != folder
            or target == folder):
        raise _error(path, f"{what} stores its data in {location!r}, which "
                     "is not a file inside the model's folder (after "
                     "resolving links); keep the data file beside the model.",
                     fix="")

    def check(info):
        if not stat.S_ISREG(info.st_mode):
            raise _error(path, f"{what} stores its data in {location!r}, "
                         "which is not a regular file.")
        if offset < 0 or length != size or offset + length > info.st_size:
            raise _error(path, f"{what} needs {size} bytes of external "
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
        raise _error(path, f"{what}'s external data {location!r} cannot be "
                     f"read: {e}.") from e


# --------------------------------------------------------------------------
# Recognizing and verifying, before any Keras model is built
# --------------------------------------------------------------------------

def identify(graph, networks):
    """The network of `networks` whose fingerprint `graph` has."""
    found = graph.fingerprint
    for network in networks:
        if found == network.fingerprint:
            return network
    raise _error(
        graph.path,
        "The file is not one of the ONNX model zoo networks that keras_lrn "
        f"loads ({', '.join(n.name for n in networks)}): its {found[0]} "
        f"convolutions and {found[1]} fully connected layers (first "
        f"convolution weights {found[2]}) match none of them.",
        fix="Load one of these networks' float32 files from the model zoo, "
            "or convert other graphs with another tool.")


def verify(graph, network):
    """Checks every declared weight shape, convolution, pool and LRN of
    `graph` against `network`, reading no weight; raises `ValueError` at
    the first difference."""
    where = f"The file ({network.name})"
    if graph.fingerprint != network.fingerprint:
        raise _error(
            graph.path,
            f"The file is not the model zoo's {network.name}: it has "
            f"{graph.fingerprint[0]} convolutions and {graph.fingerprint[1]} "
            f"fully connected layers, first convolution weights "
            f"{graph.fingerprint[2]}, where {network.name} has "
            f"{network.fingerprint}. If it is another zoo network, "
            "`keras_lrn.applications.from_onnx_zoo(path)` picks the "
            "matching architecture.", fix="")
    for layer, (op, attrs, tensors) in zip(network.layers, graph.weighted):
        shapes = tuple(t.shape for t in tensors)
        defaults = _CONV_DEFAULTS if op == "Conv" else _GEMM_DEFAULTS
        attrs = dict(attrs)
        kernel = attrs.pop("kernel_shape", None)  # implied by the weights
        if kernel is not None and kernel != shapes[0][2:]:
            attrs["kernel_shape"] = kernel
        theirs = tuple(sorted({**defaults, **attrs}.items()))
        if op != layer.op or shapes != layer.shapes or theirs != layer.attributes:
            raise _error(
                graph.path,
                f"{where}: the node of {layer.name!r} is a {op} with weights "
                f"{list(shapes)} and attributes {dict(theirs)}; the model zoo "
                f"graph has a {layer.op} with {list(layer.shapes)} and "
                f"{dict(layer.attributes)}. This conversion does not support "
                "that graph.")
    if tuple(graph.pools) != tuple(network.pools):
        raise _error(
            graph.path,
            f"{where}: its pooling layers {graph.pools} differ from the model "
            f"zoo graph's {list(network.pools)}; this conversion does not "
            "support that graph.")
    if len(graph.lrns) != network.lrn_count:
        raise _error(graph.path, f"{where}: {len(graph.lrns)} LRN nodes, "
                     f"expected {network.lrn_count}.")
    ours = [network.lrn[k] for k in ("size", "alpha", "beta", "bias")]
    for attrs in graph.lrns:
        theirs = {"size": None, **_LRN_DEFAULTS, **attrs}
        values = [theirs[k] for k in ("size", "alpha", "beta", "bias")]
        if values[0] != ours[0] or not np.allclose(values[1:], ours[1:],
                                                   rtol=1e-6):
            raise _error(
                graph.path,
                f"{where}: LRN attributes {theirs} differ from the model zoo "
                f"graph's {network.lrn}; this conversion does not support "
                "that graph.")


# --------------------------------------------------------------------------
# Loading the verified weights into the builder's model
# --------------------------------------------------------------------------

def load(graph):
    """Reads the weights of the verified `graph`'s weighted nodes, each
    stored tensor once however many nodes name it; raises `ValueError`
    naming the file for data that does not match its declaration or is not
    finite."""
    for _, _, tensors in graph.weighted:
        for tensor in tensors:
            graph.store.array(tensor.name)


def assign(model, graph, network):
    """Loads the verified `graph`'s weights into `model`, the builder's
    model of `network`; a headless model takes the convolutions only."""
    where = f"The file ({network.name})"
    load(graph)
    loaded = set()
    for layer, (_, attrs, tensors) in zip(network.layers, graph.weighted):
        targets = _common.weight_layers(model, layer.name)
        if not targets:
            continue  # a headless model: no fully connected layers
        values = _keras_values(layer, [np.asarray(t) for t in tensors])
        for g, target in enumerate(targets):
            if len(targets) > 1:  # explicit towers: split the filters
                part = [np.split(v, len(targets), axis=-1)[g] for v in values]
            else:
                part = values
            expected = [tuple(w.shape) for w in target.weights]
            if [v.shape for v in part] != expected:
                raise _error(
                    graph.path,
                    f"{where}: layer {target.name!r} has weights of shapes "
                    f"{expected}, the file {[v.shape for v in part]}: build "
                    "the model with the zoo's input_shape (224, 224, 3) and "
                    "classes=1000.", fix="")
            target.set_weights(part)
            loaded.add(target.name)
    unloaded = [layer.name for layer in model.layers
                if layer.weights and layer.name not in loaded]
    if unloaded:
        raise _error(
            graph.path,
            f"{where}: the file has no weights for the layers {unloaded} "
            "(e.g. normalization='batchnorm'); build the model as the file's "
            "architecture to load it.", fix="")
    return model


def _keras_values(layer, arrays):
    if layer.op == "Conv":
        return [arrays[0].transpose(2, 3, 1, 0), arrays[1]]
    kernel = arrays[0].T  # transB=1: the file stores (units, inputs)
    if layer.flattened_from is not None:
        # ONNX flattens NCHW maps channel-major; Keras' Flatten flattens
        # channels_last order (also for channels_first models).
        c, h, w = layer.flattened_from
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3)
        kernel = kernel.reshape(h * w * c, -1)
    return [kernel, arrays[1]]


def build(path, networks, classifier_activation="softmax", name=None):
    """Reads `path`'s graph, recognizes which of `networks` it holds and
    verifies it from the declarations alone, then reads its weights (each
    stored tensor once) and only then builds that network's Keras model
    with them."""
    graph = read(path)
    network = identify(graph, networks)
    verify(graph, network)
    load(graph)
    kwargs = {"classifier_activation": classifier_activation}
    if name is not None:
        kwargs["name"] = name
    return assign(network.builder(**kwargs), graph, network)
