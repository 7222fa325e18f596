"""Peak memory and time of refusing the issue-20 amplification files.

Builds, in a temporary folder, the two files issue 20 describes: a 54 MB
`.onnx` whose one stored tensor 40 Conv nodes name, and a tiny `.onnx`
beside a 432 MB sparse external-data file (no disk used) that 8 Conv nodes
name. Each is then given to `keras_lrn.applications.from_onnx_zoo` in a
fresh process, which prints the growth of its peak resident memory (Linux
`VmHWM` after resetting it through `/proc/self/clear_refs`, falling back to
`ru_maxrss` growth) and the time until the `ValueError`.

Usage: `python -m benchmarks.zoo_amplification` (about 10 s).
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
print(f"{(peak - before) / 2**20:.1f} MiB peak growth, {seconds:.2f} s: "
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


def main():
    with tempfile.TemporaryDirectory() as folder:
        shared, sparse = _files(folder)
        lines = []
        for label, path in (("54 MB, 40 nodes share it", shared),
                            ("412 B + 432 MB sparse, 8 nodes", sparse)):
            size = os.path.getsize(path)
            out = subprocess.run([sys.executable, "-c", CHILD, path],
                                 capture_output=True, text=True, check=True)
            lines.append(f"{label} ({size} bytes): {out.stdout.strip()}")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
