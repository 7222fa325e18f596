"""An ONNX file's stored tensors: their bytes budgeted from what they
declare, then each read once.

`check_budget` checks, from the declarations alone and before any tensor is
read or allocated, every stored tensor's dims and byte count and the bytes
all of them declare together against `MAX_BYTES`. `TensorStore` gives the
declared shapes without reading anything, and reads a tensor's values
(`StoredTensor`, through `numpy.asarray`) only when asked: each once
however many nodes name it, external data only from regular files inside
the model's folder (after resolving links), refusing non-finite values.
Anything malformed raises `file_error` (`keras_lrn.applications.
_onnx_wire`). `keras_lrn.applications._onnx_reader` builds the store when
it reads a file.
"""

import dataclasses
import math
import os
import stat

import numpy as np

from keras_lrn.applications._onnx_wire import file_error

__all__ = ["MAX_BYTES", "StoredTensor", "TensorStore", "check_budget"]

# The most a file's stored tensors may declare, all together, in bytes: the
# zoo's largest network of these, zfnet512, stores 87.3M float32 weights
# (349.0 MB, 332.8 MiB). It is checked from the declared dims, before
# anything is read or allocated; the file itself may be this plus
# `_onnx_wire.MAX_GRAPH_BYTES` of graph.
MAX_BYTES = 352 * 2**20
# Stored tensors declaring at most this many bytes have their raw data's
# length checked by `check_budget` (when `read` reads the file); larger ones
# when `load` reads them.
_SIZED_NOW = 2**20

_FLOAT32, _INT64 = 1, 7              # onnx.TensorProto.FLOAT, .INT64
_DTYPES = {_FLOAT32: np.dtype("<f4"), _INT64: np.dtype("<i8")}
_DTYPE_NAMES = {_FLOAT32: "float32", _INT64: "int64"}
# bytes per element of every ONNX data type (onnx.TensorProto.DataType), for
# the budget; 4-bit types count a byte, unknown ones (and STRING) the most
_ITEMSIZES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8,
              12: 4, 13: 8, 14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1,
              21: 1, 22: 1, 23: 1, 24: 1, 25: 1, 26: 1}
_LARGEST_ITEMSIZE = 16


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


def check_budget(tensors, path, folder):
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
        return nbytes  # refused by `TensorStore` if a node uses it as a weight
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


class TensorStore:
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

