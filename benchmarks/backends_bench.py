"""keras-lrn on every Keras backend, against each backend's floor and LRN.

One table per backend, each measured in its own process (a backend is
chosen when Keras is imported), every candidate interleaved with the others
in that process:

    python -m benchmarks.backends_bench --output benchmarks/RESULTS.md
    python -m benchmarks.backends_bench --backend torch      # one backend

For 32x55x55x96 float32 (AlexNet's conv1 output, NHWC), across channels,
size 5, alpha 1e-4, beta 0.75, bias 2 (the paper's), forward and forward +
backward (the vector-Jacobian product with a fixed upstream gradient,
returning dx), eager and compiled, it times

- the backend's floor: `x * 2.0` (one read and one write of the tensor),
  eager and compiled;
- `keras_lrn.LRN()`, the layer as users call it;
- the backend's own LRN: TensorFlow's `tf.nn.local_response_normalization`,
  PyTorch's `torch.nn.functional.local_response_norm` on the NCHW copy of
  the input with the same function's arguments (`LRN.to_torch()`), and for
  JAX (which has none) the formula with its window sum as
  `jax.lax.reduce_window`;
- on JAX, hand-written `jax.jit` formulas beside it;
- on TensorFlow, a plain `tf.function` (no XLA) at sizes 5 and 15 in both
  modes, and the same under XLA.

"Compiled" is TensorFlow's `tf.function(jit_compile=True)` (and the plain
`tf.function`, its own context), `jax.jit`, and `torch.compile` (Keras's
`jit_compile=True` on torch). The driver writes the tables, the command,
the load averages and the versions into the marked section of
benchmarks/RESULTS.md (`--output`), leaving the rest of that file to
benchmarks/lrn_bench.py.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import warnings

if __package__ in (None, ""):  # run as a script: make `benchmarks` a package
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

from benchmarks import timing  # noqa: E402
from benchmarks.timing import ALPHA, BETA, BIAS, fmt  # noqa: E402

SHAPE = (32, 55, 55, 96)
SIZE = 5
# back-to-back calls timed per repetition (their mean is recorded)
CALLS_PER_REP = 3
BACKENDS = ("tensorflow", "jax", "torch")
BEGIN = "<!-- backends_bench: begin (generated; do not edit by hand) -->"
END = "<!-- backends_bench: end -->"


def _layer(size=SIZE, mode="across_channels", data_format="channels_last"):
    import keras_lrn

    return keras_lrn.LRN(size=size, alpha=ALPHA, beta=BETA, bias=BIAS,
                         mode=mode, data_format=data_format)


# --- candidates, per backend --------------------------------------------------
# Each returns a list of (name, context, pass, callable, role): role "floor",
# "ours", "native" (the backend's own LRN) or "other".

def tensorflow_candidates(x_nhwc, g_nhwc):
    import tensorflow as tf

    x, g = tf.constant(x_nhwc), tf.constant(g_nhwc)
    layer = _layer()

    def native(t):
        return tf.nn.local_response_normalization(
            t, depth_radius=SIZE // 2, bias=BIAS, alpha=ALPHA, beta=BETA)

    def grad_of(function):
        def vjp(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                y = function(t)
            return tape.gradient(y, t, output_gradients=g)
        return vjp

    # CPU kernels have finished when the call returns (as in
    # benchmarks/lrn_bench.py: no copy to NumPy, which took as long as the
    # floor itself and compressed every ratio); a GPU's are synced. Decided
    # once, outside the timed calls.
    sync_devices = getattr(getattr(tf.test, "experimental", None),
                           "sync_devices", None)
    if not tf.config.list_logical_devices("GPU"):
        sync_devices = None

    def finished(result):
        if sync_devices is not None:
            sync_devices()
        return result

    contexts = {
        "eager": lambda f: f,
        "tf.function": tf.function,
        "XLA": lambda f: tf.function(f, jit_compile=True),
    }
    rows = []
    for context, wrap in contexts.items():
        for name, function, role in (
                ("floor: x * 2.0", lambda t: t * 2.0, "floor"),
                ("keras_lrn.LRN()", layer, "ours"),
                ("tf.nn.local_response_normalization", native, "native")):
            for pas, f in (("fwd", function), ("fwd+bwd", grad_of(function))):
                compiled = wrap(f)
                rows.append((name, context, pas,
                             (lambda c: lambda: finished(c(x)))(compiled), role))
    for mode in ("across_channels", "within_channel"):
        for size in (5, 15):
            wide = _layer(size=size, mode=mode)
            for context in ("tf.function", "XLA"):
                compiled = contexts[context]((lambda l: lambda t: l(t))(wide))
                rows.append((f"keras_lrn.LRN(size={size}, mode='{mode}')",
                             context, "fwd",
                             (lambda c: lambda: finished(c(x)))(compiled),
                             "size"))
    return rows


def jax_candidates(x_nhwc, g_nhwc):
    import jax
    import jax.numpy as jnp

    x, g = jnp.asarray(x_nhwc), jnp.asarray(g_nhwc)
    layer = _layer()
    before = after = SIZE // 2

    def reduce_window_lrn(t):
        total = jax.lax.reduce_window(
            jnp.square(t), 0.0, jax.lax.add, (1, 1, 1, SIZE), (1, 1, 1, 1),
            [(0, 0), (0, 0), (0, 0), (before, after)])
        return t * (BIAS + ALPHA * total) ** -BETA

    def padded_slices_rsqrt(t):
        channels = t.shape[-1]
        padded = jnp.pad(jnp.square(t), [(0, 0)] * 3 + [(before, after)])
        total = sum(padded[..., i:i + channels] for i in range(SIZE))
        root = jax.lax.rsqrt(BIAS + ALPHA * total)
        return t * root * jnp.sqrt(root)

    def shifted_slices_rsqrt(t):
        squares = jnp.square(t)
        total = squares
        for d in range(1, before + 1):
            total = total + jnp.concatenate(
                [jnp.zeros_like(squares[..., :d]), squares[..., :-d]], -1)
        for d in range(1, after + 1):
            total = total + jnp.concatenate(
                [squares[..., d:], jnp.zeros_like(squares[..., :d])], -1)
        root = jax.lax.rsqrt(BIAS + ALPHA * total)
        return t * root * jnp.sqrt(root)

    def grad_of(function):
        return lambda t: jax.vjp(function, t)[1](g)[0]

    rows = []
    for name, function, role, contexts in (
            ("floor: x * 2.0", lambda t: t * 2.0, "floor", ("eager", "jit")),
            ("keras_lrn.LRN()", layer, "ours", ("eager", "jit")),
            ("reduce_window formula", reduce_window_lrn, "native",
             ("eager", "jit")),
            ("hand-written: padded slices, rsqrt", padded_slices_rsqrt,
             "other", ("jit",)),
            ("hand-written: shifted slices, rsqrt", shifted_slices_rsqrt,
             "other", ("jit",))):
        for context in contexts:
            for pas, f in (("fwd", function), ("fwd+bwd", grad_of(function))):
                compiled = jax.jit(f) if context == "jit" else f
                rows.append((name, context, pas,
                             (lambda c: lambda: c(x).block_until_ready())(
                                 compiled), role))
    return rows


def torch_candidates(x_nhwc, g_nhwc, compiled=True):
    import torch
    import torch.nn.functional as F

    x, g = torch.from_numpy(x_nhwc), torch.from_numpy(g_nhwc)
    x_nchw = x.movedim(-1, 1).contiguous()
    g_nchw = g.movedim(-1, 1).contiguous()
    layer = _layer()
    layer_nchw = _layer(data_format="channels_first")
    torch_arguments = layer.to_torch()

    def native(t):
        return F.local_response_norm(t, **torch_arguments)

    def grad_of(function, upstream):
        def vjp(t):
            leaf = t.detach().requires_grad_()
            (dx,) = torch.autograd.grad(function(leaf), leaf, upstream)
            return dx
        return vjp

    rows = []
    for name, function, role, inputs in (
            ("floor: x * 2.0", lambda t: t * 2.0, "floor", (x, g)),
            ("keras_lrn.LRN() (NHWC)", layer, "ours", (x, g)),
            ("keras_lrn.LRN(data_format='channels_first') (NCHW)",
             layer_nchw, "ours NCHW", (x_nchw, g_nchw)),
            ("F.local_response_norm (NCHW)", native, "native",
             (x_nchw, g_nchw))):
        for context in ("eager", "torch.compile")[:2 if compiled else 1]:
            for pas in ("fwd", "fwd+bwd"):
                f = function if pas == "fwd" else grad_of(function, inputs[1])
                if context == "torch.compile":
                    f = torch.compile(f)
                if pas == "fwd":
                    run = (lambda c, t: lambda: _no_grad(c, t))(f, inputs[0])
                else:
                    run = (lambda c, t: lambda: c(t))(f, inputs[0])
                rows.append((name, context, pas, run, role))
    return rows


def _no_grad(function, x):
    import torch

    with torch.no_grad():
        return function(x)


# --- one backend, in this process --------------------------------------------

def run_backend(shape=SHAPE, repetitions=11, warmup=2, torch_compile=True,
                calls_per_rep=CALLS_PER_REP):
    """Times every candidate of the current Keras backend, interleaved
    (without `torch_compile`, PyTorch's eager candidates only: compiling
    takes minutes).

    Returns a dict: the backend, rows (name, context, pass, role, median
    and min ms, first call ms, error), warnings raised while compiling,
    load averages, versions.
    """
    import keras
    import numpy as np

    backend = keras.backend.backend()
    x, g = timing.make_data(tuple(shape))
    load_start = os.getloadavg()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if backend == "torch":
            rows = torch_candidates(x, g, compiled=torch_compile)
        elif backend == "jax":
            rows = jax_candidates(x, g)
        else:
            rows = tensorflow_candidates(x, g)
        bench = timing.Bench(timing.Setup(
            backend=backend, shapes={"": tuple(shape)}, reps=repetitions,
            warmup=warmup, calls_per_rep=calls_per_rep))
        for name, context, pas, run, role in rows:
            candidate = bench.add(run, impl=name, shape=shape, ctx=context,
                                  pas=pas)
            candidate.role = role
        bench.run(log=sys.stderr)
    compile_warnings = sorted({
        f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}"
        for w in caught
        if "keras_lrn" in str(w.filename) or "dynamo" in str(w.message).lower()
        or "lru_cache" in str(w.message)})
    return {
        "backend": backend,
        "shape": list(shape),
        "repetitions": repetitions,
        "calls_per_rep": calls_per_rep,
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "versions": _versions(backend),
        "compile_warnings": compile_warnings,
        "rows": [dict(name=c.impl, context=c.ctx, pas=c.pas, role=c.role,
                      median=c.median if c.times else None,
                      min=c.min if c.times else None, first=c.first_ms,
                      error=c.error)
                 for c in bench.candidates],
        "bench": bench,
        "agreement": _agreement(np, x),
    }


def _agreement(np, x):
    """max relative difference of the layer from the float64 formula."""
    import keras

    y = keras.ops.convert_to_numpy(_layer()(x))
    return timing.rel_err(y, timing.numpy_reference(x, SIZE))


def _versions(backend):
    import keras

    import keras_lrn

    text = [f"python {platform.python_version()}", f"keras {keras.__version__}",
            f"keras_lrn {keras_lrn.__version__}"]
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    text.append(f"{backend} {__import__(module[backend]).__version__}")
    return ", ".join(text)


# --- the report ----------------------------------------------------------------

def _find(rows, **kw):
    for row in rows:
        if row["median"] is not None and all(row[k] == v
                                             for k, v in kw.items()):
            return row
    return None


def _ratio(a, b):
    if a is None or b is None:
        return None
    return a["median"] / b["median"]


def backend_table(result):
    """The markdown table of one backend, with its ratio columns."""
    rows = result["rows"]
    lines = [
        "| candidate | context | pass | median ms | min ms | first call ms "
        "| x floor (same context) | x own LRN (same context) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["role"] == "size":
            continue
        if row["error"]:
            lines.append(f"| {row['name']} | {row['context']} | {row['pas']} "
                         f"| failed: {row['error']} | | | | |")
            continue
        floor = _find(rows, role="floor", context=row["context"],
                      pas=row["pas"])
        native = _find(rows, role="native", context=row["context"],
                       pas=row["pas"])
        lines.append(
            f"| {row['name']} | {row['context']} | {row['pas']} "
            f"| {fmt(row['median'])} | {fmt(row['min'])} "
            f"| {fmt(row['first'], 0)} "
            f"| {fmt(_ratio(row, floor))} | {fmt(_ratio(row, native))} |")
    sizes = [row for row in rows if row["role"] == "size"]
    if sizes:
        lines += ["", "Window size (forward, size 15 over size 5 in the same "
                  "mode and context):", "",
                  "| mode | context | size 5 ms | size 15 ms | size 15 / size 5 |",
                  "|---|---|---|---|---|"]
        for mode in ("across_channels", "within_channel"):
            for context in ("tf.function", "XLA"):
                five = _find(sizes, context=context,
                             name=f"keras_lrn.LRN(size=5, mode='{mode}')")
                fifteen = _find(sizes, context=context,
                                name=f"keras_lrn.LRN(size=15, mode='{mode}')")
                lines.append(
                    f"| {mode} | {context} "
                    f"| {fmt(five and five['median'])} "
                    f"| {fmt(fifteen and fifteen['median'])} "
                    f"| {fmt(_ratio(fifteen, five))} |")
    return "\n".join(lines)


def targets(result):
    """The issue's targets for this backend: (text, met) pairs."""
    rows = result["rows"]
    backend = result["backend"]
    checks = []

    def check(text, a, b, bound):
        r = _ratio(a, b)
        if r is None:
            checks.append((f"{text}: not measured", False))
            return
        checks.append((f"{text}: {a['median']:.2f} / {b['median']:.2f} ms "
                       f"= {r:.2f} (<= {bound} required)", r <= bound))

    if backend == "torch":
        for pas in ("fwd", "fwd+bwd"):
            check(f"torch eager {pas}: LRN() (NHWC) at least 2x faster than "
                  "F.local_response_norm (NCHW)",
                  _find(rows, role="ours", context="eager", pas=pas),
                  _find(rows, role="native", context="eager", pas=pas), 0.5)
            check(f"torch.compile {pas}: LRN() at most 4x the torch floor "
                  "(torch.compile of x * 2.0)",
                  _find(rows, role="ours", context="torch.compile", pas=pas),
                  _find(rows, role="floor", context="torch.compile", pas=pas),
                  4)
        checks.append(("torch.compile: no Dynamo warnings about keras_lrn "
                       f"({len(result['compile_warnings'])} seen)",
                       not result["compile_warnings"]))
    elif backend == "jax":
        ours_jit = _find(rows, role="ours", context="jit", pas="fwd")
        check("JAX jitted fwd at most 1.5x JAX's floor (jitted x * 2.0)",
              ours_jit, _find(rows, role="floor", context="jit", pas="fwd"),
              1.5)
        for row in rows:
            if row["context"] == "jit" and row["pas"] == "fwd" and row[
                    "role"] in ("other", "native"):
                check(f"JAX jitted fwd no slower than {row['name']} (jit)",
                      ours_jit, row, 1)
        check("JAX eager layer fwd at most 1.1x the jitted layer",
              _find(rows, role="ours", context="eager", pas="fwd"), ours_jit,
              1.1)
        check("JAX jitted fwd+bwd no slower than the reduce_window formula's",
              _find(rows, role="ours", context="jit", pas="fwd+bwd"),
              _find(rows, role="native", context="jit", pas="fwd+bwd"), 1)
    else:
        for context in ("tf.function", "XLA"):
            for mode in ("across_channels", "within_channel"):
                check(f"TensorFlow {context}, {mode}: size 15 at most 2x size 5",
                      _find(rows, context=context,
                            name=f"keras_lrn.LRN(size=15, mode='{mode}')"),
                      _find(rows, context=context,
                            name=f"keras_lrn.LRN(size=5, mode='{mode}')"), 2)
        # benchmarks/lrn_bench.py's targets that this table measures
        check("lrn_bench 1a: XLA fwd at least 3x faster than tf.nn under XLA",
              _find(rows, role="ours", context="XLA", pas="fwd"),
              _find(rows, role="native", context="XLA", pas="fwd"), 0.333)
        check("lrn_bench 2a: plain tf.function fwd at least 1.7x faster than "
              "tf.nn", _find(rows, role="ours", context="tf.function",
                             pas="fwd"),
              _find(rows, role="native", context="tf.function", pas="fwd"),
              0.588)
        check("lrn_bench 2b: plain tf.function fwd within 2.2x of the XLA "
              "x * 2.0", _find(rows, role="ours", context="tf.function",
                               pas="fwd"),
              _find(rows, role="floor", context="XLA", pas="fwd"), 2.2)
        for context in ("tf.function", "XLA"):
            check(f"lrn_bench 3: {context} fwd+bwd at least as fast as "
                  "tf.nn's", _find(rows, role="ours", context=context,
                                   pas="fwd+bwd"),
                  _find(rows, role="native", context=context, pas="fwd+bwd"),
                  1)
    return checks


def markdown(results, command):
    when = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    out = [BEGIN, "", "## Every backend (`benchmarks/backends_bench.py`)", "",
           f"- date: {when}", f"- command: `{command}`",
           f"- logical processors: {os.cpu_count()}",
           "- each backend in its own process; in it every candidate is "
           "called once (first call: tracing and compiling), warmed up, then "
           "called in a fixed round-robin order for each repetition "
           "(interleaved); medians and minimums in ms.",
           f"- input: {'x'.join(map(str, results[0]['shape']))} float32 NHWC "
           "(uniform in [0, 50)), across channels, size 5, alpha 1e-4 (per "
           "term), beta 0.75, bias 2; forward+backward is the vector-Jacobian "
           "product with a fixed random upstream gradient, returning dx.",
           "- *x floor*: median over the median of the backend's `x * 2.0` in "
           "the same context and pass; *x own LRN*: over the backend's own "
           "LRN in the same context and pass (TensorFlow: `tf.nn`; PyTorch: "
           "`F.local_response_norm` on the NCHW copy, same function; JAX: the "
           "`reduce_window` formula).", ""]
    for result in results:
        out += [f"### {result['backend']}", "",
                f"- {result['versions']}; {result['repetitions']} "
                f"repetitions of {result['calls_per_rep']} back-to-back "
                "call(s) each (the mean per call is recorded)",
                "- load average (1, 5, 15 min) at the start: "
                + ", ".join(f"{v:.2f}" for v in result["load_start"])
                + "; at the end: "
                + ", ".join(f"{v:.2f}" for v in result["load_end"]),
                f"- layer vs float64 formula: max relative difference "
                f"{result['agreement']:.2g}"]
        if result["compile_warnings"]:
            out.append("- warnings while compiling: " + "; ".join(
                result["compile_warnings"]))
        out += ["", backend_table(result), "", "Targets (issue 19):", ""]
        out += [f"- {'met' if met else '**NOT met**'}: {text}"
                for text, met in targets(result)]
        out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def write_section(path, section):
    """Replaces the marked section of `path` (or appends it)."""
    text = open(path).read() if os.path.exists(path) else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS,
                        help="measure this backend in this process and print "
                             "its table (default: every backend, each in its "
                             "own process)")
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--calls-per-rep", type=int, default=CALLS_PER_REP,
                        help="time this many back-to-back calls per "
                             "repetition (the mean per call is recorded): "
                             "with 1, every candidate runs after the others' "
                             "work has evicted its data and idled its "
                             "threads (as in benchmarks/lrn_bench.py)")
    parser.add_argument("--shape", default="x".join(map(str, SHAPE)))
    parser.add_argument("--json", help=argparse.SUPPRESS)
    parser.add_argument("--output", help="write the tables into the marked "
                        "section of this markdown file")
    args = parser.parse_args(argv)
    shape = timing.parse_shape(args.shape)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
        result = run_backend(shape, args.reps, args.warmup,
                             calls_per_rep=args.calls_per_rep)
        result.pop("bench")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f)
        print(markdown([result], " ".join(["python -m benchmarks."
                                           "backends_bench"] + (argv or
                                                                sys.argv[1:]))))
        return result
    results = []
    for backend in BACKENDS:
        path = f"/tmp/backends_bench_{os.getpid()}_{backend}.json"
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        subprocess.run([sys.executable, "-m", "benchmarks.backends_bench",
                        "--backend", backend, "--reps", str(args.reps),
                        "--warmup", str(args.warmup), "--shape", args.shape,
                        "--calls-per-rep", str(args.calls_per_rep),
                        "--json", path], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        with open(path) as f:
            results.append(json.load(f))
        os.remove(path)
    command = "python -m benchmarks.backends_bench " + " ".join(
        argv if argv is not None else sys.argv[1:])
    section = markdown(results, command.strip())
    print(section)
    if args.output:
        write_section(args.output, section)
    return results


if __name__ == "__main__":
    main()
