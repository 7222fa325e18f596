"""Peak memory and time of refusing amplification files.

Builds, in a temporary folder, the two files issue 20 describes (a 54 MB
`.onnx` whose one stored tensor 40 Conv nodes name, and a tiny `.onnx`
beside a 432 MB sparse external-data file that 8 Conv nodes name) and the
structure files issue 26 describes: a 57 MB file holding one Conv with 20M
`pads`, a 38 MB file of 1.5M Relu nodes, and the same two kinds at the
reader's size limit (`MAX_BYTES + MAX_GRAPH_BYTES`, 370 MB). The
structure files are written in protobuf's wire format directly (the
`onnx` package would take minutes and gigabytes to build them). Each is
then given to `keras_lrn.applications.from_onnx_zoo` in a fresh process,
which prints the growth of its peak resident memory (Linux `VmHWM` after
resetting it through `/proc/self/clear_refs`, falling back to
`ru_maxrss` growth), that growth over the file's size, and the time until
the `ValueError`.

Usage: `python -m benchmarks.zoo_amplification` (about 30 s; 1 GB of
temporary disk).
"""

import os
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r"""
import os, resource, sys, time
import keras_lrn.applications as applications

def vm(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key)) * 1024

try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident size
    before = vm("VmRSS")
except OSError:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
try:
    applications.from_onnx_zoo(sys.argv[1])
    message = "loaded"
except ValueError as e:
    message = str(e)
seconds = time.perf_counter() - start
try:
    peak = vm("VmHWM")
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
size = os.path.getsize(sys.argv[1])
print(f"{(peak - before) / 2**20:.1f} MiB peak growth "
      f"({(peak - before) / size:.3g}x the file), {seconds:.2f} s: "
      f"{message[:150]}")
"""


def _files(folder):
    import onnx
    from onnx import helper, numpy_helper

    def model(weight, nodes, channels):
        conv = [helper.make_node("Conv", ["data" if i == 0 else f"y{i - 1}",
                                          "w"], [f"y{i}"], name=f"conv{i}")
                for i in range(nodes)]
        graph = helper.make_graph(
            conv, "amplification",
            [helper.make_tensor_value_info("data", onnx.TensorProto.FLOAT,
                                           [1, channels, 1, 1])],
            [helper.make_tensor_value_info(f"y{nodes - 1}",
                                           onnx.TensorProto.FLOAT, None)],
            initializer=[weight])
        return helper.make_model(graph,
                                 opset_imports=[helper.make_opsetid("", 12)])

    channels = 3674  # 54.0 MB of float32
    shared = os.path.join(folder, "shared.onnx")
    weight = numpy_helper.from_array(
        np.full((channels, channels, 1, 1), 0.01, np.float32), "w")
    onnx.save(model(weight, 40, channels), shared)

    channels = 10392  # 432.0 MB of float32
    sparse = os.path.join(folder, "sparse.onnx")
    weight = onnx.TensorProto(name="w", dims=(channels, channels, 1, 1),
                              data_type=onnx.TensorProto.FLOAT,
                              data_location=onnx.TensorProto.EXTERNAL)
    nbytes = 4 * channels * channels
    weight.external_data.add(key="location", value="w.bin")
    weight.external_data.add(key="length", value=str(nbytes))
    with open(os.path.join(folder, "w.bin"), "wb") as f:
        f.truncate(nbytes)
    onnx.save(model(weight, 8, channels), sparse)
    return shared, sparse


def _key(number, wire):
    return _varint(number << 3 | wire)


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return _key(number, 2) + _varint(len(payload)) + payload


def _string(number, text):
    return _field(number, text.encode())


def _model_file(path, graph):
    """An ONNX ModelProto (ir_version 7, opset 12) around `graph`'s bytes:
    the fields of onnx.proto, written directly."""
    opset = _string(1, "") + _key(2, 0) + _varint(12)
    with open(path, "wb") as f:
        f.write(_key(1, 0) + _varint(7) + _field(8, opset))
        f.write(_key(7, 2) + _varint(len(graph)))
        f.write(graph)
    return path


def _value_info(name):
    return _string(1, name)


def _pads_file(path, pads):
    """One Conv node whose `pads` attribute holds `pads` ints (a multiple
    of 20), unpacked as the `onnx` package writes them (a tag and a varint
    each): 20 pads in 57 bytes (17 of 3 bytes, 3 of 2), so that 20M take
    the issue's 57 MB."""
    block = (_key(8, 0) + _varint(200)) * 17 + (_key(8, 0) + _varint(1)) * 3
    ints = block * (pads // 20)
    attribute = _string(1, "pads") + _key(20, 0) + _varint(7)
    attribute = _field(5, attribute + ints)
    node = (_string(1, "data") + _string(1, "w") + _string(2, "y")
            + _string(4, "Conv") + attribute)
    graph = (_field(1, node) + _string(2, "pads")
             + _field(11, _value_info("data"))
             + _field(12, _value_info("y")))
    return _model_file(path, graph)


def _relu_file(path, nodes):
    """A chain of `nodes` Relu nodes of 25 bytes each (38 MB for 1.5M)."""
    first = _field(1, _string(1, "x") + _string(2, "y") + _string(3, "relu")
                   + _string(4, "Relu"))
    node = _field(1, _string(1, "y") + _string(2, "y")
                  + _string(3, "relu_0000") + _string(4, "Relu"))
    graph = (first + node * (nodes - 1) + _string(2, "relus")
             + _field(11, _value_info("x")) + _field(12, _value_info("y")))
    return _model_file(path, graph)


def _structure_files(folder):
    from keras_lrn.applications import _onnx_tensors, _onnx_wire

    limit = _onnx_tensors.MAX_BYTES + _onnx_wire.MAX_GRAPH_BYTES
    pads_at_limit = (limit - 200) // 57 * 20
    relus_at_limit = (limit - 200) // 25
    return (
        ("57 MB, one Conv with 20M pads",
         _pads_file(os.path.join(folder, "pads.onnx"), 20_000_000)),
        ("38 MB, 1.5M Relu nodes",
         _relu_file(os.path.join(folder, "relus.onnx"), 1_500_000)),
        (f"at the size limit, one Conv with {pads_at_limit} pads",
         _pads_file(os.path.join(folder, "pads_limit.onnx"), pads_at_limit)),
        (f"at the size limit, {relus_at_limit} Relu nodes",
         _relu_file(os.path.join(folder, "relus_limit.onnx"),
                    relus_at_limit)),
    )


def main():
    with tempfile.TemporaryDirectory() as folder:
        shared, sparse = _files(folder)
        lines = []
        for label, path in (
                ("54 MB, 40 nodes share it", shared),
                ("412 B + 432 MB sparse, 8 nodes", sparse),
                *_structure_files(folder)):
            size = os.path.getsize(path)
            out = subprocess.run([sys.executable, "-c", CHILD, path],
                                 capture_output=True, text=True, check=True)
            lines.append(f"{label} ({size} bytes): {out.stdout.strip()}")
            if label.startswith(("57 MB", "38 MB", "at the size limit")):
                os.remove(path)  # keeps the temporary disk small
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
