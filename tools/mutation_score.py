"""The project's mutation score: plants realistic bugs, one at a time, and
counts how many the tests catch.

Each entry of `MUTATIONS` is a bug that happened, or nearly did, in
keras-lrn's history (CHANGELOG.md, the issues): the file it lives in (a path
or a glob such as `keras_lrn/**/*.py`, so that an entry survives code moving
between modules), an exact, short snippet of the correct code, the snippet
with the bug, and the tests that should catch it (pytest arguments: node ids,
files, `-k` expressions).

The script copies the repository's tracked and untracked, not ignored files
into a temporary folder (the working tree is never touched), then for each
entry replaces the snippet there, runs the entry's tests with the copy
first on `PYTHONPATH` (packages already on it still import) under each
backend the entry concerns (`KERAS_BACKEND`), and restores the file. An
entry is

- `caught` when the tests fail (pytest exit status 1, or 2 with failures
  where pytest-xdist's `-n` stopped at the first) under every backend it
  names,
- `MISSED` when they pass,
- `stale` when its snippet is not found exactly once in its files (the code
  moved or changed: update the entry),
- `error` when pytest could not run the tests (exit status 2 to 5, e.g. no
  test matched the selection).

It prints a Markdown table and `caught/planted` (stale entries are planted
nothing and counted apart), and exits with status 1 unless every entry was
caught. It is not part of CI: a full run takes several minutes (each entry
starts a pytest process).

Usage:

```
python tools/mutation_score.py            # every entry
python tools/mutation_score.py --list     # entries and whether each applies
python tools/mutation_score.py --only zoo-ignores-lrn-bias,zfnet-paper-bias
python tools/mutation_score.py --backend torch  # the entries concerning it
```

When code moves, an entry goes `stale`: point its `files` at the new
module and copy its `original` snippet from there (`--list` shows which).
"""

import argparse
import dataclasses
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Mutation:
    """A planted bug.

    Attributes:
        name: a short id.
        files: a path, or a glob, relative to the repository root; the
            snippet must occur exactly once in all of its files together.
        original: the correct code, exactly as in the file.
        mutated: the same code with the bug.
        tests: pytest arguments selecting the tests that should catch it.
        backends: the `KERAS_BACKEND`s whose code path the bug is on; the
            tests run under each.
        why: the bug in words, and where it comes from.
    """

    name: str
    files: str
    original: str
    mutated: str
    tests: tuple
    backends: tuple = ("tensorflow",)
    why: str = ""


PACKAGE = "keras_lrn/**/*.py"
ZOO = "keras_lrn/applications/zoo.py"
TORCH = ("torch",)
JAX = ("jax",)
CONTEXTS = "tests/test_contexts.py"
# the ONNX reader: the wire-format walk, the stored tensors, the graph
ONNX_READER = "keras_lrn/applications/_onnx_*.py"

# The dispatch table's TensorFlow rows: its own op (asked for, exported,
# cuDNN) first, then the portable passes, which match every structure.
_TF_NATIVE_ROWS = (
    "    # TensorFlow's own op where asked for, exported, or on a GPU (cuDNN);\n"
    "    # its backward is the portable one, compiled for the context\n"
    '    ("tensorflow", ("eager", "eager_export"), ("native",),\n'
    '     "_compilation:tensorflow_native_eager"),\n'
    '    ("tensorflow", ("graph", "graph_export"), ("native",),\n'
    '     "_compilation:tensorflow_native"),\n'
    '    ("tensorflow", ("eager_export",), ("lrn_op", "cudnn"),\n'
    '     "_compilation:tensorflow_native_eager"),\n'
    '    ("tensorflow", ("graph_export",), ("lrn_op", "cudnn"),\n'
    '     "_compilation:tensorflow_native"),\n'
    '    ("tensorflow", ("eager",), ("cudnn",),\n'
    '     "_compilation:tensorflow_native_eager"),\n'
    '    ("tensorflow", ("graph",), ("cudnn",), '
    '"_compilation:tensorflow_native"),\n')
_TF_PORTABLE_ROWS = (
    "    # else the portable passes: XLA-compiled eagerly, inline ops in "
    "graphs\n"
    '    ("tensorflow", ("eager", "eager_export"), ANY,\n'
    '     "_compilation:tensorflow_eager"),\n'
    '    ("tensorflow", ("graph", "graph_export"), ANY,\n'
    '     "_compilation:tensorflow_graph"),\n')
_JAX_ONNX_NODE_ROW = (
    '    ("jax", ("onnx_export",), ("lrn_op",), "_jax_export:onnx_node"),\n')
_JAX_TRACED_ROW = (
    '    ("jax", ("onnx_export", "traced"), ANY, "_compilation:jax_traced"),\n')

MUTATIONS = (
    # --- issue 20: bugs that slipped past the tests ---------------------------
    Mutation(
        "zoo-ignores-lrn-bias", ZOO,
        "np.allclose(values[1:], ours[1:],",
        "np.allclose(values[1:3], ours[1:3],",
        ("tests/test_zoo.py", "-k", "lrn_attribute"),
        why="the importer's LRN check compares size, alpha, beta, not bias"),
    Mutation(
        "zfnet-paper-bias", "keras_lrn/applications/zfnet.py",
        "LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, bias=2.0,",
        "LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, bias=1.0,",
        ("tests/test_applications.py", "-k", "published_lrn"),
        why="ZFNet's paper variant with Caffe's k=1 instead of AlexNet's 2"),
    Mutation(
        "alexnet-learned-window-scale", "keras_lrn/applications/*.py",
        "LEARNED_WINDOW_SCALE = 2.5",
        "LEARNED_WINDOW_SCALE = 5.0",
        ("tests/test_applications.py", "-k", "learned_lrn"),
        why="the learned window starts twice as wide as the box's 5"),
    Mutation(
        "native-rank-guard", PACKAGE,
        "(len(shape) == 4,",
        "(len(shape) >= 4,",
        ("tests/test_dispatch.py", "-k", "native_op_refuses_ranks"),
        why="native_unavailable_reason lets 5-D and 6-D input reach "
            "tf.nn.local_response_normalization (4-D only)"),
    Mutation(
        "onnx-export-calls-compiled-function", PACKAGE,
        "separate_compiled_gradients=False):\n            return function(*args)",
        "separate_compiled_gradients=False):\n            return compiled(*args)",
        ("tests/test_dispatch.py", "-k", "onnx_export_without_the_switch"),
        why="traced graphs call the XLA-compiled function: tf2onnx leaves a "
            "nested PartitionedCall, an export onnxruntime cannot run"),
    Mutation(
        "googlenet-zoo-bias", "keras_lrn/applications/googlenet.py",
        'ZOO_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}',
        'ZOO_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 2.0}',
        ("tests/test_applications.py", "-k", "published_lrn or zoo_lrn"),
        why="GoogLeNet with AlexNet's k=2 instead of the zoo file's bias 1"),
    Mutation(
        "bench-report-loses-xla-floor", "benchmarks/report.py",
        '    return bench.find(impl="x*2", shape=c.shape, dtype=c.dtype)\n',
        '    return bench.find(impl="x*2", shape=c.shape, dtype="float64")\n',
        ("tests/test_benchmarks.py", "-k", "lrn_bench"),
        why="the report's 'x XLA x*2' ratios come out empty (the smoke test "
            "only imported the modules)"),
    # --- issue 20: the importer's new checks ----------------------------------
    Mutation(
        "zoo-budget-doubled", ONNX_READER,
        "if total > MAX_BYTES:",
        "if total > 2 * MAX_BYTES:",
        ("tests/test_onnx_tensors.py", "-k", "budget"),
        why="the total byte budget not enforced as declared"),
    Mutation(
        "zoo-each-dim-unchecked", ONNX_READER,
        "if any(d < 0 or d > limit for d in dims):",
        "if any(d < 0 for d in dims):",
        ("tests/test_onnx_tensors.py", "-k", "malformed_dims"),
        why="dims [2**62, 2**62, 0]: a zero hides the huge dims"),
    Mutation(
        "zoo-only-first-opset", ONNX_READER,
        "others = [domain for domain, _ in imports if domain not in "
        "_ONNX_DOMAINS]",
        "others = [domain for domain, _ in imports[:1] if domain not in "
        "_ONNX_DOMAINS]",
        ("tests/test_onnx_reader.py", "-k", "opset_import"),
        why="only the first opset import checked (issue 20)"),
    Mutation(
        "zoo-dangling-inputs-accepted", ONNX_READER,
        "dangling = [name for name in n.input if name and name not in "
        "produced]",
        "dangling = []",
        ("tests/test_onnx_reader.py", "-k", "dangling or later_node"),
        why="a node reading what nothing produces is accepted"),
    Mutation(
        "zoo-nan-only", ONNX_READER,
        "if data_type == _FLOAT32 and not np.isfinite(array).all():",
        "if data_type == _FLOAT32 and np.isnan(array).all():",
        ("tests/test_onnx_tensors.py", "-k", "non_finite"),
        why="only all-NaN weights refused: one NaN or Inf passes"),
    Mutation(
        "zoo-tensor-read-per-node", ONNX_READER,
        "        if name not in self.arrays:\n",
        "        if True:\n",
        ("tests/test_onnx_tensors.py", "-k", "read_once"),
        why="every node naming a stored tensor reads (copies) it again"),
    Mutation(
        "zoo-weights-read-before-recognition", ONNX_READER,
        "            stored = tuple(StoredTensor(name, store.shape(name, n), "
        "store)\n",
        "            stored = tuple(StoredTensor(name, store.array(name).shape, "
        "store)\n",
        ("tests/test_onnx_reader.py", "tests/test_onnx_tensors.py", "-k",
         "declared_shapes or shared_initializer"),
        why="the weights are read to learn their shapes, before the network "
            "is recognized (issue 20's +2,160 MB)"),
    Mutation(
        "zoo-external-data-outside-folder", ONNX_READER,
        "or os.path.commonpath([target, folder]) != folder",
        "or False",
        ("tests/test_onnx_tensors.py", "-k", "external_data"),
        why="external data read from '../outside.bin' (issue 10)"),
    # --- earlier issues -------------------------------------------------------
    Mutation(
        "converter-alpha-not-divided", "keras_lrn/conventions.py",
        'name="ONNX LRN",\n        size_arg="size",\n        '
        'size_is_radius=False,\n        alpha_divisor_exponent=1,',
        'name="ONNX LRN",\n        size_arg="size",\n        '
        'size_is_radius=False,\n        alpha_divisor_exponent=0,',
        ("tests/test_numerics.py", "-k", "from_onnx"),
        why="from_onnx takes ONNX's alpha per term (ONNX divides it by size)"),
    Mutation(
        "caffe-within-alpha-over-n", "keras_lrn/conventions.py",
        "alpha_divisor_exponent=2,",
        "alpha_divisor_exponent=1,",
        ("tests/test_numerics.py", "tests/test_layer.py", "-k",
         "caffe and within"),
        why="Caffe WITHIN_CHANNEL divides alpha by n, not n**2"),
    Mutation(
        "tensorflow-radius-as-size", "keras_lrn/conventions.py",
        "size = 2 * window + 1 if convention.size_is_radius else window",
        "size = 2 * window if convention.size_is_radius else window",
        ("tests/test_numerics.py", "-k", "from_tensorflow"),
        why="depth_radius r read as a window of 2r channels, not 2r + 1"),
    Mutation(
        "to-onnx-alpha-per-term", "keras_lrn/conventions.py",
        '"alpha": alpha * size**convention.alpha_divisor_exponent,',
        '"alpha": alpha,',
        ("tests/test_layer.py", "tests/test_applications.py", "-k",
         "every_converter or zoo_lrn"),
        why="to_onnx (and to_torch, to_caffe) keep the per-term alpha"),
    Mutation(
        "even-window-side-swapped", PACKAGE,
        'before = size // 2 if even_window_side == "before" else '
        "(size - 1) // 2",
        'before = size // 2 if even_window_side == "after" else '
        "(size - 1) // 2",
        ("tests/test_numerics.py", "-k", "even_window_side"),
        why="PyTorch's extra element put after the centre, ONNX's before"),
    Mutation(
        "window-off-by-one", PACKAGE,
        "after = size - 1 - before",
        "after = size - before",
        ("tests/test_numerics.py", "-k", "matches_float64_formula"),
        why="a window one channel wider than `size`"),
    Mutation(
        "beta-075-fast-path", PACKAGE,
        "return p.multiply(root, p.sqrt(root))",
        "return p.multiply(root, p.sqrt(t))",
        ("tests/test_numerics.py", "-k", "power_path"),
        why="the power table's beta = 0.75 computes t**(0.5 + 0.5)"),
    Mutation(
        "beta-075-backward-power", PACKAGE,
        "return p.multiply(root, p.sqrt(root))",
        "return p.multiply(root, root)",
        ("tests/test_gradients.py", "-k", "first_order_matches"),
        why="the power table's t**0.75 computes t**(0.5 + 0.5), forward and "
            "backward"),
    Mutation(
        "beta-075-in-place-power", PACKAGE,
        "if p.in_place:\n            return p.power(t, beta)",
        "if p.in_place:\n            return p.power(t, 1.0)",
        ("tests/test_torch_kernels.py", "-k", "float64_equals"),
        backends=TORCH,
        why="PyTorch's eager kernel raises t to 1 instead of beta 0.75"),
    Mutation(
        "half-precision-not-upcast", PACKAGE,
        'return "float32" if dtype in HALF_PRECISION_DTYPES else dtype',
        "return dtype",
        ("tests/test_dtypes.py", "-k", "float16 or every_dtype"),
        why="float16 squares summed in float16: overflow and rounding"),
    # --- issue 30: paths no deterministic test exercised ------------------------
    Mutation(
        "op-fixed-box-ignores-window", PACKAGE,
        "    if learned or not isinstance(window, _windows.BoxWindow):\n"
        '        return "general"\n',
        "    if learned:\n"
        '        return "general"\n',
        ("tests/test_dispatch.py", CONTEXTS, "-k",
         "general_structures_run_inside or (native_for_export and "
         "exponential)"),
        why="the dispatch's structure takes a fixed exponential window for "
            "a box: inside native_for_export() it reaches the native op, "
            "AttributeError (issue 30)"),
    Mutation(
        "torch-backward-window-not-flipped", PACKAGE,
        "correction = window_sum(u, axes, after, before)",
        "correction = window_sum(u, axes, before, after)",
        ("tests/test_gradients.py", "-k", "training_path"), TORCH,
        why="loss.backward()'s in-place backward sums over the window, not "
            "its transpose: wrong for even sizes (issue 30)"),
    # --- issue 30: one per context a user runs the layer in ---------------------
    Mutation(
        "context-eager-torch-window-sides", PACKAGE,
        "for shift in range(1, min(after, length - 1) + 1):\n"
        "        t.narrow(",
        "for shift in range(1, min(before, length - 1) + 1):\n"
        "        t.narrow(",
        (CONTEXTS, "-k", "test_eager"), TORCH,
        why="eager PyTorch's in-place sum adds `before` elements after the "
            "centre: even windows one element off"),
    Mutation(
        "context-graph-absolute-slices", PACKAGE,
        "index[axis] = slice(start, -stop_from_end if stop_from_end else "
        "None)",
        "index[axis] = slice(start, tensor.shape[axis] - stop_from_end)",
        (CONTEXTS, "-k", "tf_function"),
        why="window slices written from the static length: a graph traced "
            "with unknown image sizes (a SavedModel's signature) fails"),
    Mutation(
        "context-xla-doubling-stops-early", PACKAGE,
        "while 2 * width <= size:\n        previous = windows[width]",
        "while 2 * width < size:\n        previous = windows[width]",
        (CONTEXTS, "-k", "tf_function and xla"),
        why="the doubling window sums stop one step early: power-of-two "
            "sizes never built"),
    Mutation(
        "context-native-depth-radius", PACKAGE,
        "window = (size - 1) // 2 if convention.size_is_radius else size",
        "window = (size + 1) // 2 if convention.size_is_radius else size",
        (CONTEXTS, "-k", "native_for_export"),
        why="TensorFlow's depth_radius (the native op's, from "
            "conventions.from_canonical) one channel past the window's "
            "edge"),
    Mutation(
        "context-tflite-alpha-over-size", PACKAGE,
        '        + 1, alpha, beta, bias, "across_channels", "after")',
        "        + 1, alpha / (2 * window.before + 1), beta, bias, "
        '"across_channels", "after")',
        (CONTEXTS, "-k", "tflite"),
        why="the native op (TFLite's builtin LRN) given Caffe's alpha / n "
            "instead of the per-term alpha"),
    Mutation(
        "context-onnx-tensorflow-export-not-seen", PACKAGE,
        'if (frame.f_code.co_name == "export_onnx"',
        'if (frame.f_code.co_name == "export_saved_model"',
        ("tests/test_export.py", "-k", "exported_model_equals"),
        why="Keras's ONNX export on TensorFlow not recognized: the graph "
            "holds the formula's nodes instead of one LRN"),
    Mutation(
        "context-onnx-jax-alpha-per-term", PACKAGE,
        'alpha=float(attributes["alpha"]),',
        'alpha=float(params["alpha"]),',
        (CONTEXTS, "-k", "onnx"), JAX,
        why="jax2onnx's LRN node given the per-term alpha (ONNX divides by "
            "size)"),
    Mutation(
        "context-onnx-torch-alpha-per-term", PACKAGE,
        '"alpha_f": arguments["alpha"],',
        '"alpha_f": alpha,',
        (CONTEXTS, "-k", "onnx"), TORCH,
        why="TorchScript's LRN node given the per-term alpha (ONNX divides "
            "by size)"),
    Mutation(
        "context-jax-jit-shifted-sides", PACKAGE,
        "    for shift in range(1, after + 1):\n",
        "    for shift in range(1, before + 1):\n",
        (CONTEXTS, "-k", "jax_jit"), JAX,
        why="JAX's shifted-copies sum adds `before` copies after the "
            "centre: even windows one element off"),
    Mutation(
        "context-torch-compile-rsqrt", PACKAGE,
        "    sqrt=torch.sqrt, multiply=torch.mul,",
        "    sqrt=torch.rsqrt, multiply=torch.mul,",
        (CONTEXTS, "-k", "torch_compile"), TORCH,
        why="the out-of-place torch primitives of the power table (which "
            "torch.compile's fused kernel runs) take rsqrt for sqrt: "
            "t ** -0.5 for beta = 0.5"),
    # --- issues 25, 26, 29: the one table, the one gate, groups, the reader --
    Mutation(
        "dispatch-portable-rows-before-native", "keras_lrn/_dispatch.py",
        _TF_NATIVE_ROWS + _TF_PORTABLE_ROWS,
        _TF_PORTABLE_ROWS + _TF_NATIVE_ROWS,
        ("tests/test_dispatch.py", "-k",
         "onnx_export_holds_one_lrn_node or tflite_conversion"),
        why="the table's portable rows (which match any structure) listed "
            "before TensorFlow's own op: native_for_export() and "
            "implementation='native' never reach it, no LRN node exported"),
    Mutation(
        "dispatch-jax-traced-row-before-onnx-node", "keras_lrn/_dispatch.py",
        _JAX_ONNX_NODE_ROW + _JAX_TRACED_ROW,
        _JAX_TRACED_ROW + _JAX_ONNX_NODE_ROW,
        ("tests/test_export.py", "-k", "exported_model_equals"), JAX,
        why="the table's traced row (any structure, also while exporting) "
            "before the ONNX node's: jax2onnx exports the formula's ops, "
            "never one LRN node"),
    Mutation(
        "groups-reshape-interleaved", "keras_lrn/_operation.py",
        "grouped = shape[:-1] + (groups, shape[-1] // groups)",
        "grouped = shape[:-1] + (shape[-1] // groups, groups)",
        ("tests/test_groups.py", "-k",
         "matches_the_formula_run_per_group or towers_edges"),
        why="channels_last reshaped to (..., channels // groups, groups): "
            "each 'group' takes every groups-th channel, the windows run "
            "across the towers"),
    Mutation(
        "groups-of-two-ungrouped", "keras_lrn/_operation.py",
        "    if groups > 1:\n        return _grouped(",
        "    if groups > 2:\n        return _grouped(",
        ("tests/test_groups.py", "-k",
         "towers_edges or matches_the_formula_run_per_group"),
        why="the groups boundary off by one: groups=2 (AlexNet's two towers) "
            "computed ungrouped, windows crossing the towers' edge"),
    Mutation(
        "gate-beta-bound-without-log", "keras_lrn/_value_gate.py",
        '"beta": (0.0, largest / (2 * -math.log(tiny))),',
        '"beta": (0.0, largest / 2),',
        ("tests/test_hostile_inputs.py", "-k",
         "beta_has_an_upper_bound or (gate_refuses and arguments and beta)"),
        why="the value gate bounds beta like alpha and bias (max / 2): "
            "beta * log(t) overflows for small t, an infinite power"),
    Mutation(
        "gate-bfloat16-log-not-rounded", "keras_lrn/_value_gate.py",
        "stored = _rounded(log_value, variable_dtype)",
        "stored = float(log_value)",
        ("tests/test_hostile_inputs.py", "-k",
         "gate_refuses and bfloat16 and bias"),
        why="the learned value checked from its logarithm unrounded: "
            "bfloat16 rounds log(bias) = -87.30 to -87.5, whose exp is no "
            "longer normal, and the gate lets it in"),
    Mutation(
        "zoo-structure-attribute-elements-per-attribute", ONNX_READER,
        "self.attribute_elements += elements",
        "self.attribute_elements = elements",
        ("tests/test_onnx_wire.py", "-k", "structure_beyond"),
        why="the reader's limit on attribute elements in all checks each "
            "attribute alone: thousands of small attributes pass"),
    Mutation(
        "zoo-structure-node-names-unchecked", ONNX_READER,
        "            elif number in _NODE_NAMES:\n"
        "                self.name(_NODE_NAMES[number], a, b)\n",
        "            elif number in _NODE_NAMES:\n"
        "                pass\n",
        ("tests/test_onnx_wire.py", "-k", "structure_beyond"),
        why="the reader bounds input and output names but not a node's own "
            "name, op type or domain: a megabyte name is parsed"),
)


def _files(pattern, root):
    return sorted(glob.glob(os.path.join(root, pattern), recursive=True))


def locate(mutation, root=ROOT):
    """The file holding the mutation's snippet, or why there is none."""
    hits = []
    for path in _files(mutation.files, root):
        with open(path, encoding="utf-8") as f:
            hits += [path] * f.read().count(mutation.original)
    if len(hits) == 1:
        return hits[0], None
    if not hits:
        return None, f"snippet not found in {mutation.files}"
    return None, (f"snippet found {len(hits)} times in "
                  f"{sorted(set(os.path.relpath(h, root) for h in hits))}")


def copy_repository(destination):
    """Copies the tracked and untracked, not ignored, files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = os.path.join(ROOT, name)
        if not os.path.isfile(source):
            continue  # deleted in the working tree
        target = os.path.join(destination, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def python_path(copy, environ=os.environ):
    """`PYTHONPATH` with the copy first and what was on it kept after."""
    return os.pathsep.join(
        [copy] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep)
                  if p])


def run(mutation, copy, pytest_args=(), backends=None):
    """Plants `mutation` in `copy`, runs its tests there under each of its
    backends (or `backends`), restores the file; returns (status, seconds,
    detail): "caught" only where every backend's run failed."""
    path, problem = locate(mutation, copy)
    if path is None:
        return "stale", 0.0, problem
    with open(path, encoding="utf-8") as f:
        original = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(original.replace(mutation.original, mutation.mutated))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p",
               "no:cacheprovider", *pytest_args, *mutation.tests]
    start = time.perf_counter()
    results = []
    try:
        for backend in backends or mutation.backends:
            env = dict(os.environ, PYTHONPATH=python_path(copy),
                       KERAS_BACKEND=backend, PYTHONDONTWRITEBYTECODE="1")
            results.append((backend, subprocess.run(
                command, cwd=copy, env=env, capture_output=True, text=True)))
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(original)
    seconds = time.perf_counter() - start
    statuses, details = [], []
    for backend, result in results:
        lines = result.stdout.strip().splitlines()
        detail = lines[-1] if lines else result.stderr.strip()[-200:]
        status = {0: "MISSED", 1: "caught"}.get(result.returncode, "error")
        if result.returncode == 2 and re.search(r"\b\d+ failed\b", detail):
            # pytest-xdist (`-n`) ends a run that `-x` stopped at a failure
            # with status 2, "interrupted"
            status = "caught"
        statuses.append(status)
        details.append(f"{backend}: {detail}")
    status = next((s for s in ("error", "MISSED") if s in statuses),
                  "caught")
    return status, seconds, "; ".join(details)


def table(rows):
    lines = ["| mutation | file | backends | tests | result | s | pytest |",
             "|---|---|---|---|---|---|---|"]
    for mutation, path, status, seconds, detail in rows:
        lines.append(
            f"| {mutation.name} | {path} | {', '.join(mutation.backends)} | "
            f"`{shlex.join(mutation.tests)}` | {status} | {seconds:.0f} | "
            f"{detail.replace('|', '/')} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true",
                        help="list the entries and whether each applies; "
                             "run nothing")
    parser.add_argument("--only", default="",
                        help="comma-separated entry names")
    parser.add_argument("--backend", default="",
                        help="only the entries whose code path is on this "
                             "backend, planted and tested under it")
    parser.add_argument("--pytest-args", default="",
                        help="extra pytest arguments, e.g. '-n 2'")
    args = parser.parse_args(argv)
    selected = [m for m in MUTATIONS
                if (not args.only or m.name in args.only.split(","))
                and (not args.backend or args.backend in m.backends)]
    unknown = set(filter(None, args.only.split(","))) - {
        m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutations {sorted(unknown)}")
    if args.list:
        rows = []
        for m in selected:
            path, problem = locate(m)
            rows.append((m, os.path.relpath(path, ROOT) if path else m.files,
                         "applies" if path else "stale", 0.0,
                         problem or m.why))
        print(table(rows))
        return 0 if all(r[2] == "applies" for r in rows) else 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as copy:
        copy_repository(copy)
        for m in selected:
            status, seconds, detail = run(
                m, copy, args.pytest_args.split(),
                (args.backend,) if args.backend else None)
            path, _ = locate(m, copy)
            rows.append((m, os.path.relpath(path, copy) if path else m.files,
                         status, seconds, detail))
            print(f"{m.name}: {status} ({seconds:.0f} s)", file=sys.stderr,
                  flush=True)
    print(table(rows))
    planted = [r for r in rows if r[2] != "stale"]
    caught = [r for r in planted if r[2] == "caught"]
    stale = len(rows) - len(planted)
    print(f"\ncaught/planted: {len(caught)}/{len(planted)}"
          + (f"; {stale} stale (update their snippets)" if stale else ""))
    return 0 if len(caught) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
