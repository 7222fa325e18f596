"""Benchmark keras_lrn's LocalResponseNormalization against its floors and rivals.

Run from the repository root:

    python benchmarks/lrn_bench.py                       # full run (~10 min, 2-core CPU)
    python benchmarks/lrn_bench.py --quick               # smoke run, a few seconds
    python benchmarks/lrn_bench.py --output benchmarks/RESULTS.md \
        --plot benchmarks/window_size.png
    KERAS_BACKEND=jax python benchmarks/lrn_bench.py --device gpu   # CUDA box

Every candidate is timed in one process, interleaved: each repetition calls
every candidate once, in a fixed round-robin order, so that the load of other
processes on a shared machine spreads evenly over all of them. Reported are
the median (and min) of the repetitions, after warm-up; the first call
(tracing and compilation included) is reported separately.

Backends: with the TensorFlow backend (the default where TensorFlow is
installed) our layer runs eagerly, in `tf.function` and in
`tf.function(jit_compile=True)`, beside `tf.nn.local_response_normalization`.
With KERAS_BACKEND=jax it runs eagerly and in `jax.jit`; TensorFlow is never
imported there. PyTorch's `torch.nn.functional.local_response_norm` (NCHW,
all threads; on a GPU also `torch.compile`d) is timed where torch is
installed.
"""

import argparse
import datetime
import importlib.util
import os
import platform
import statistics
import sys
import time


# --------------------------------------------------------------------------
# command line and backend selection (before keras is imported)
# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small shapes, few repetitions")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--backend", choices=("auto", "tensorflow", "jax"),
                   default="auto",
                   help="auto: $KERAS_BACKEND if set, else tensorflow where "
                        "installed, else jax")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per candidate (default 21; "
                        "--quick: 3)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed calls after the first one (default 2)")
    p.add_argument("--calls-per-rep", type=int, default=1,
                   help="back-to-back calls timed together per candidate "
                        "and repetition (per-call mean recorded); above 1 "
                        "the calls after the first find thread pools and "
                        "caches warm (default 1: every call is cold)")
    p.add_argument("--output", default=None,
                   help="also write a markdown report to this file")
    p.add_argument("--plot", default=None,
                   help="write a time-vs-window-size plot (PNG) here")
    p.add_argument("--no-torch", action="store_true",
                   help="skip PyTorch even where it is installed")
    p.add_argument("--torch-compile", action="store_true",
                   help="also time torch.compile'd LRN (always on with "
                        "--device gpu)")
    p.add_argument("--large", default=None,
                   help="the large shape, NHWC, e.g. 64x55x55x96 (default)")
    return p.parse_args(argv)


def resolve_backend(choice):
    if choice == "auto":
        choice = os.environ.get("KERAS_BACKEND")
        if not choice:
            if importlib.util.find_spec("tensorflow") is not None:
                choice = "tensorflow"
            elif importlib.util.find_spec("jax") is not None:
                choice = "jax"
            else:
                sys.exit("lrn_bench: neither tensorflow nor jax is installed")
    if choice not in ("tensorflow", "jax"):
        sys.exit(f"lrn_bench: backend {choice!r} is not supported "
                 "(tensorflow or jax)")
    os.environ["KERAS_BACKEND"] = choice
    return choice


ARGS = parse_args()
BACKEND = resolve_backend(ARGS.backend)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if ARGS.device == "cpu" and BACKEND == "jax":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
if ARGS.device == "cpu" and BACKEND == "tensorflow":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import keras  # noqa: E402

import keras_lrn  # noqa: E402

HAVE_TORCH = (not ARGS.no_torch
              and importlib.util.find_spec("torch") is not None)

ALPHA, BETA, BIAS = 1e-4, 0.75, 2.0
MODES = ("across_channels", "within_channel")
SHORT = {"across_channels": "across", "within_channel": "within"}


def parse_shape(text):
    return tuple(int(v) for v in text.lower().split("x"))


def shape_str(shape):
    return "x".join(str(v) for v in shape)


if ARGS.quick:
    REPS = ARGS.reps or 3
    MAIN = (4, 27, 27, 96)
    SHAPES = {"main": MAIN}
    WINDOW_SIZES = (5, 15)
    HALF_DTYPES = ("bfloat16",)
else:
    REPS = ARGS.reps or 21
    MAIN = (32, 55, 55, 96)
    SHAPES = {
        "main": MAIN,  # AlexNet conv1 output, batch 32
        "conv2": (32, 27, 27, 256),  # AlexNet conv2 output, batch 32
        "small": (8, 13, 13, 64),
        "large": parse_shape(ARGS.large) if ARGS.large else (64, 55, 55, 96),
    }
    WINDOW_SIZES = (3, 5, 9, 15)
    HALF_DTYPES = ("float16", "bfloat16")
SHAPE_LABEL = {
    "main": "conv1" if not ARGS.quick else "main (quick)",
    "conv2": "conv2", "small": "small", "large": "large",
}


# --------------------------------------------------------------------------
# candidates
# --------------------------------------------------------------------------

class Candidate:
    """One timed callable and what it measures."""

    def __init__(self, fn, *, impl, shape, dtype="float32", mode="across",
                 size=5, ctx, pas, sync=None, note=""):
        self.fn = fn
        self.sync = sync or (lambda out: out)
        self.impl, self.shape, self.dtype = impl, tuple(shape), dtype
        self.mode, self.size, self.ctx, self.pas = mode, size, ctx, pas
        self.note = note
        self.first_ms = None
        self.times = []
        self.error = None

    @property
    def key(self):
        return (self.impl, self.shape, self.dtype, self.mode, self.size,
                self.ctx, self.pas)

    def call(self, times=1):
        t0 = time.perf_counter()
        for _ in range(times):
            self.sync(self.fn())
        return (time.perf_counter() - t0) * 1e3 / times

    @property
    def median(self):
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def min(self):
        return min(self.times) if self.times else float("nan")


CANDS = []


def add(fn, **kw):
    c = Candidate(fn, **kw)
    CANDS.append(c)
    return c


def make_data(shape, seed=0):
    rng = np.random.default_rng(seed)
    # post-ReLU-like activations: large enough that the window term matters
    x = rng.uniform(0.0, 50.0, shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    return x, g


def our_layer(mode, size, implementation="auto", dtype=None):
    """The layer; `dtype` sets its dtype policy (a float32 layer would cast
    half inputs to float32 and return float32)."""
    return keras_lrn.LocalResponseNormalization(
        size=size, alpha=ALPHA, beta=BETA, bias=BIAS, mode=mode,
        data_format="channels_last", implementation=implementation,
        dtype=dtype)


def torch_params(size):
    return our_layer("across_channels", size).to_torch()


# ---------------------------- TensorFlow path -----------------------------

def build_tensorflow():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notes: expected here
    dev = "/GPU:0" if ARGS.device == "gpu" else "/CPU:0"
    if ARGS.device == "gpu" and not tf.config.list_logical_devices("GPU"):
        sys.exit("lrn_bench: --device gpu but TensorFlow sees no GPU")
    sync_devices = getattr(getattr(tf.test, "experimental", None),
                           "sync_devices", None)
    if ARGS.device == "gpu" and sync_devices is not None:
        def tf_sync(out):
            sync_devices()
            return out
    else:
        tf_sync = None  # CPU kernels have finished when the call returns

    def fwd_bwd(f, g):
        def h(v):
            with tf.GradientTape() as tape:
                tape.watch(v)
                y = f(v)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * g)
            return tape.gradient(loss, v)
        return h

    def contexts(f, g, eager_fwd=True):
        """(ctx, pass, callable taking x) for the usual contexts."""
        out = []
        if eager_fwd:
            out.append(("eager", "fwd", f))
        out += [
            ("tf.function", "fwd", tf.function(f)),
            ("XLA", "fwd", tf.function(f, jit_compile=True)),
            ("tf.function", "fwd+bwd", tf.function(fwd_bwd(f, g))),
            ("XLA", "fwd+bwd", tf.function(fwd_bwd(f, g), jit_compile=True)),
        ]
        return out

    def native(size):
        return lambda v: tf.nn.local_response_normalization(
            v, depth_radius=(size - 1) // 2, bias=BIAS, alpha=ALPHA,
            beta=BETA)

    def add_floors(name, shape, x_np, x_tf, dtype="float32"):
        add(lambda a=x_np: a.copy(), impl="numpy copy", shape=shape,
            dtype=dtype, mode="-", size=0, ctx="numpy", pas="copy")
        x2 = tf.function(lambda v: v * 2, jit_compile=True)
        add(lambda x2=x2, x_tf=x_tf: x2(x_tf), impl="x*2", shape=shape, dtype=dtype,
            mode="-", size=0, ctx="XLA", pas="elementwise", sync=tf_sync)

    with tf.device(dev):
        for name, shape in SHAPES.items():
            x_np, g_np = make_data(shape)
            xt, gt = tf.constant(x_np), tf.constant(g_np)
            add_floors(name, shape, x_np, xt)
            sizes = (5,)
            for size in sizes:
                for mode in MODES:
                    layer = our_layer(mode, size)
                    layer(xt[:1])  # build
                    for ctx, pas, f in contexts(layer, gt):
                        add(lambda f=f, xt=xt: f(xt), impl="ours", shape=shape,
                            mode=SHORT[mode], size=size, ctx=ctx, pas=pas,
                            sync=tf_sync)
                for ctx, pas, f in contexts(native(size), gt):
                    add(lambda f=f, xt=xt: f(xt), impl="tf.nn (native)",
                        shape=shape, size=size, ctx=ctx, pas=pas,
                        sync=tf_sync)
                if name == "main":
                    # our layer with implementation="native": the tf.nn
                    # forward with our own (XLA-compiled) backward
                    layer = our_layer("across_channels", size, "native")
                    layer(xt[:1])
                    for ctx, pas, f in contexts(layer, gt, eager_fwd=False):
                        if ctx == "tf.function":
                            add(lambda f=f, xt=xt: f(xt), impl="ours[native]",
                                shape=shape, size=size, ctx=ctx, pas=pas,
                                sync=tf_sync)
            if name == "main":
                # window sizes, forward, both modes
                for size in WINDOW_SIZES:
                    if size == 5:
                        continue
                    for mode in MODES:
                        layer = our_layer(mode, size)
                        layer(xt[:1])
                        for ctx, pas, f in contexts(layer, gt,
                                                    eager_fwd=False):
                            if pas == "fwd":
                                add(lambda f=f, xt=xt: f(xt), impl="ours",
                                    shape=shape, mode=SHORT[mode], size=size,
                                    ctx=ctx, pas=pas, sync=tf_sync)
                    for ctx, pas, f in contexts(native(size), gt,
                                                eager_fwd=False):
                        if pas == "fwd":
                            add(lambda f=f, xt=xt: f(xt), impl="tf.nn (native)",
                                shape=shape, size=size, ctx=ctx, pas=pas,
                                sync=tf_sync)
                # half precision, our layer
                for dtype in HALF_DTYPES:
                    xh = tf.cast(xt, dtype)
                    add_floors(name, shape, xh.numpy(), xh, dtype)
                    for mode in MODES:
                        layer = our_layer(mode, 5, dtype=dtype)
                        layer(xh[:1])
                        for ctx, pas, f in contexts(layer, gt,
                                                    eager_fwd=False):
                            add(lambda f=f, xh=xh: f(xh), impl="ours",
                                shape=shape, dtype=dtype, mode=SHORT[mode],
                                size=5, ctx=ctx, pas=pas, sync=tf_sync)
            if HAVE_TORCH:
                add_torch(name, shape, x_np, g_np)


def check_tensorflow():
    """Cross-checks ours vs native vs torch on the main shape (max rel err)."""
    import tensorflow as tf

    x_np, _ = make_data(MAIN)
    xt = tf.constant(x_np)
    lines = []
    ref = tf.nn.local_response_normalization(xt, 2, BIAS, ALPHA, BETA).numpy()
    ours = our_layer("across_channels", 5)(xt)
    ours = keras.ops.convert_to_numpy(ours)
    lines.append(("ours across vs tf.nn", rel_err(ours, ref)))
    if HAVE_TORCH:
        lines.append(("torch vs tf.nn", rel_err(torch_forward(x_np), ref)))
    return lines


# -------------------------------- JAX path --------------------------------

def build_jax():
    import jax
    import jax.numpy as jnp

    platform_name = "gpu" if ARGS.device == "gpu" else "cpu"
    try:
        device = jax.devices(platform_name)[0]
    except RuntimeError:
        sys.exit(f"lrn_bench: --device {ARGS.device} but JAX has no "
                 f"{platform_name} device")

    def block(out):
        return jax.block_until_ready(out)

    def contexts(f, g, eager_fwd=True):
        def loss(v):
            return jnp.sum(f(v).astype(jnp.float32) * g)
        out = []
        if eager_fwd:
            out.append(("eager", "fwd", f))
        out += [("jit", "fwd", jax.jit(f)),
                ("jit", "fwd+bwd", jax.jit(jax.grad(loss)))]
        return out

    for name, shape in SHAPES.items():
        x_np, g_np = make_data(shape)
        xj = jax.device_put(x_np, device)
        gj = jax.device_put(g_np, device)
        if ARGS.device == "cpu":
            add(lambda a=x_np: a.copy(), impl="numpy copy", shape=shape,
                mode="-", size=0, ctx="numpy", pas="copy")
        x2 = jax.jit(lambda v: v * 2)
        add(lambda x2=x2, xj=xj: x2(xj), impl="x*2", shape=shape, mode="-", size=0,
            ctx="jit", pas="elementwise", sync=block)
        for mode in MODES:
            layer = our_layer(mode, 5)
            layer(xj[:1])
            for ctx, pas, f in contexts(layer, gj):
                add(lambda f=f, xj=xj: f(xj), impl="ours", shape=shape,
                    mode=SHORT[mode], size=5, ctx=ctx, pas=pas, sync=block)
        if name == "main":
            for size in WINDOW_SIZES:
                if size == 5:
                    continue
                for mode in MODES:
                    layer = our_layer(mode, size)
                    layer(xj[:1])
                    f = jax.jit(layer)
                    add(lambda f=f, xj=xj: f(xj), impl="ours", shape=shape,
                        mode=SHORT[mode], size=size, ctx="jit", pas="fwd",
                        sync=block)
            for dtype in HALF_DTYPES:
                xh = xj.astype(dtype)
                x2h = jax.jit(lambda v: v * 2)
                add(lambda xh=xh, x2h=x2h: x2h(xh), impl="x*2", shape=shape,
                    dtype=dtype, mode="-", size=0, ctx="jit",
                    pas="elementwise", sync=block)
                if ARGS.device == "cpu":
                    xh_np = np.asarray(xh)
                    add(lambda a=xh_np: a.copy(), impl="numpy copy",
                        shape=shape, dtype=dtype, mode="-", size=0,
                        ctx="numpy", pas="copy")
                for mode in MODES:
                    layer = our_layer(mode, 5, dtype=dtype)
                    layer(xh[:1])
                    for ctx, pas, f in contexts(layer, gj, eager_fwd=False):
                        add(lambda f=f, xh=xh: f(xh), impl="ours",
                            shape=shape, dtype=dtype, mode=SHORT[mode],
                            size=5, ctx=ctx, pas=pas, sync=block)
        if HAVE_TORCH:
            add_torch(name, shape, x_np, g_np)


def check_jax():
    import jax

    x_np, _ = make_data(MAIN)
    ours = np.asarray(jax.jit(our_layer("across_channels", 5))(x_np))
    ref = numpy_reference(x_np.astype(np.float64), 5)
    lines = [("ours across (jit) vs float64 numpy", rel_err(ours, ref))]
    if HAVE_TORCH:
        lines.append(("torch vs float64 numpy",
                      rel_err(torch_forward(x_np), ref)))
    return lines


# ------------------------------- PyTorch ----------------------------------

_TORCH_READY = False


def torch_setup():
    global _TORCH_READY
    import torch

    if not _TORCH_READY:
        torch.set_num_threads(os.cpu_count() or 1)
        _TORCH_READY = True
    return torch


def torch_forward(x_nhwc):
    torch = torch_setup()
    p = torch_params(5)
    xt = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        y = torch.nn.functional.local_response_norm(xt, **p)
    return y.numpy().transpose(0, 2, 3, 1)


def add_torch(name, shape, x_np, g_np):
    torch = torch_setup()
    F = torch.nn.functional
    cuda = ARGS.device == "gpu"
    if cuda and not torch.cuda.is_available():
        print("# torch: no CUDA device, PyTorch rows skipped",
              file=sys.stderr)
        return
    dev = "cuda" if cuda else "cpu"
    sync = (lambda out: (torch.cuda.synchronize(), out)[1]) if cuda else None
    x = torch.from_numpy(np.ascontiguousarray(
        x_np.transpose(0, 3, 1, 2))).to(dev)
    g = torch.from_numpy(np.ascontiguousarray(
        g_np.transpose(0, 3, 1, 2))).to(dev)
    xg = x.clone().requires_grad_(True)
    sizes = (5,) + (tuple(s for s in WINDOW_SIZES if s != 5)
                    if name == "main" else ())
    compile_too = cuda or ARGS.torch_compile
    for size in sizes:
        p = torch_params(size)

        def fwd(v, p=p):
            return F.local_response_norm(v, **p)

        def fwd_bwd(v, p=p):
            y = F.local_response_norm(v, **p)
            return torch.autograd.grad((y * g).sum(), v)[0]

        variants = [("eager", fwd, fwd_bwd)]
        if compile_too and size == 5:
            variants.append(("torch.compile", torch.compile(fwd),
                             torch.compile(fwd_bwd)))
        for ctx, f, fb in variants:
            def run_fwd(f=f):
                with torch.no_grad():
                    return f(x)
            add(run_fwd, impl="torch", shape=shape, size=size, ctx=ctx,
                pas="fwd", sync=sync, note="NCHW")
            if size == 5:
                add(lambda fb=fb: fb(xg), impl="torch", shape=shape,
                    size=size, ctx=ctx, pas="fwd+bwd", sync=sync,
                    note="NCHW")


# ------------------------------ helpers -----------------------------------

def numpy_reference(x, size):
    lo = (size - 1) // 2
    hi = size - 1 - lo
    sq = np.pad(x * x, [(0, 0)] * 3 + [(lo, hi)])
    c = x.shape[-1]
    s = sum(sq[..., i:i + c] for i in range(size))
    return x / (BIAS + ALPHA * s) ** BETA


def rel_err(y, ref):
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


def run_all(log):
    n = len(CANDS)
    print(f"# {n} candidates, first call + {ARGS.warmup} warm-up each, then "
          f"{REPS} interleaved repetitions", file=log, flush=True)
    t0 = time.perf_counter()
    for c in CANDS:
        try:
            c.first_ms = c.call()
            for _ in range(ARGS.warmup):
                c.call()
        except Exception as e:  # keep going: report the failure
            c.error = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            print(f"# FAILED {describe(c)}: {c.error}", file=log, flush=True)
    t_warm = time.perf_counter() - t0
    print(f"# warm-up done in {t_warm:.0f} s", file=log, flush=True)
    live = [c for c in CANDS if c.error is None]
    t1 = time.perf_counter()
    for r in range(REPS):
        for c in live:
            c.times.append(c.call(ARGS.calls_per_rep))
        if r == 0 or (r + 1) % 5 == 0:
            print(f"# rep {r + 1}/{REPS} ({time.perf_counter() - t1:.0f} s)",
                  file=log, flush=True)
    t_timed = time.perf_counter() - t1
    return t_warm, t_timed


def describe(c):
    return (f"{c.impl} {SHORT.get(c.mode, c.mode)} size={c.size} "
            f"{shape_str(c.shape)} {c.dtype} {c.ctx} {c.pas}")


def find(**kw):
    for c in CANDS:
        if c.error is None and c.times and all(
                getattr(c, k) == v for k, v in kw.items()):
            return c
    return None


def floor_of(c):
    """The floor a row is compared with: numpy copy (CPU) else jitted x*2."""
    f = find(impl="numpy copy", shape=c.shape, dtype=c.dtype)
    return f or find(impl="x*2", shape=c.shape, dtype=c.dtype)


def native_of(c):
    if c.impl == "tf.nn (native)" or c.dtype != "float32":
        return None
    return find(impl="tf.nn (native)", shape=c.shape, size=c.size,
                ctx=c.ctx, pas=c.pas)


def fmt(v, digits=2):
    if v is None or v != v:
        return ""
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None:
        return None
    return a.median / b.median


# ------------------------------ reporting ---------------------------------

def table_rows(cands):
    head = ("| impl | mode | size | dtype | context | pass | median ms "
            "| min ms | first call ms | x floor | x native (same ctx) |")
    sep = "|" + "---|" * 11
    out = [head, sep]
    for c in cands:
        if c.error is not None:
            out.append(f"| {c.impl} | {c.mode} | {c.size or ''} | {c.dtype} "
                       f"| {c.ctx} | {c.pas} | failed: {c.error} "
                       "| | | | |")
            continue
        fl = floor_of(c)
        nat = native_of(c) if c.impl.startswith("ours") else None
        out.append(
            f"| {c.impl} | {c.mode} | {c.size or ''} | {c.dtype} | {c.ctx} "
            f"| {c.pas} | {fmt(c.median)} | {fmt(c.min)} "
            f"| {fmt(c.first_ms, 0)} "
            f"| {fmt(ratio(c, fl)) if fl is not c else ''} "
            f"| {fmt(ratio(c, nat))} |")
    return out


def best_ours(shape, mode, pas, dtype="float32", size=5):
    best = None
    for c in CANDS:
        if (c.impl == "ours" and c.shape == shape and c.mode == mode
                and c.pas == pas and c.dtype == dtype and c.size == size
                and c.error is None and c.times):
            if best is None or c.median < best.median:
                best = c
    return best


def torch_ratios(shape):
    lines = []
    for pas in ("fwd", "fwd+bwd"):
        t = find(impl="torch", shape=shape, ctx="eager", pas=pas, size=5)
        o = best_ours(shape, "across", pas)
        if t and o:
            lines.append(
                f"- across, {pas}: ours best ({o.ctx}) {o.median:.2f} ms vs "
                f"torch eager {t.median:.2f} ms: **{t.median / o.median:.1f}x "
                "faster**")
        tc = find(impl="torch", shape=shape, ctx="torch.compile", pas=pas,
                  size=5)
        if tc and o:
            lines.append(
                f"- across, {pas}: ours best ({o.ctx}) {o.median:.2f} ms vs "
                f"torch.compile {tc.median:.2f} ms: "
                f"**{tc.median / o.median:.1f}x faster**")
    return lines


def targets():
    """[(target, met|None, detail)] on the main shape, float32."""
    xla = "XLA" if BACKEND == "tensorflow" else "jit"
    graph = "tf.function"
    sh = MAIN
    out = []

    def g(**kw):
        return find(shape=sh, dtype="float32", **kw)

    copy = g(impl="numpy copy") or g(impl="x*2")
    floor_name = "numpy copy" if copy and copy.impl == "numpy copy" else "x*2"
    ours_xla = g(impl="ours", mode="across", size=5, ctx=xla, pas="fwd")
    nat_xla = g(impl="tf.nn (native)", size=5, ctx="XLA", pas="fwd")
    ours_graph = g(impl="ours", mode="across", size=5, ctx=graph, pas="fwd")
    nat_graph = g(impl="tf.nn (native)", size=5, ctx=graph, pas="fwd")

    def check(name, a, b, op, bound, how):
        if a is None or b is None:
            out.append((name, None, "not measured on this backend"))
            return
        r = a.median / b.median
        met = {"<=": r <= bound, "<": r < bound}[op]
        out.append((name, met, f"{how}: {a.median:.2f} / {b.median:.2f} ms "
                               f"= {r:.2f} ({op} {bound:.3g} required); "
                               f"ratio of the mins {a.min / b.min:.2f}"))

    check(f"1a. across fwd ({xla}) >= 3x faster than native op ({xla})",
          ours_xla, nat_xla, "<=", 1 / 3, "ours / native")
    check(f"1b. across fwd ({xla}) within 2x of the {floor_name}",
          ours_xla, copy, "<=", 2.0, f"ours / {floor_name}")
    check("2. across fwd (tf.function) no slower than native (tf.function)",
          ours_graph, nat_graph, "<=", 1.0, "ours / native")
    for ctx in (graph, xla):
        check(f"3. across fwd+bwd ({ctx}) at least as fast as native's",
              g(impl="ours", mode="across", size=5, ctx=ctx, pas="fwd+bwd"),
              g(impl="tf.nn (native)", size=5, ctx=ctx, pas="fwd+bwd"),
              "<=", 1.0, "ours / native")
    w5 = g(impl="ours", mode="within", size=5, ctx=xla, pas="fwd")
    check(f"4a. within fwd size 5 ({xla}) within 2.5x of the {floor_name}",
          w5, copy, "<=", 2.5, f"ours / {floor_name}")
    check("4b. within fwd size 5 (tf.function) within 1.5x of native "
          "across (tf.function)",
          g(impl="ours", mode="within", size=5, ctx=graph, pas="fwd"),
          nat_graph, "<=", 1.5, "ours within / native across")
    check(f"4c. within fwd size 15 ({xla}) < 2x its size-5 time",
          g(impl="ours", mode="within", size=15, ctx=xla, pas="fwd"), w5,
          "<", 2.0, "size 15 / size 5")
    for pas in ("fwd", "fwd+bwd"):
        t = g(impl="torch", size=5, ctx="eager", pas=pas)
        o = best_ours(sh, "across", pas)
        check(f"5. across {pas}: best context >= 10x faster than torch "
              "eager", o, t, "<=", 0.1,
              f"ours ({o.ctx if o else '?'}) / torch")
    return out


def machine_info():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f
                     if ln.startswith("model name")]
        if names:
            cpu = names[0]
        with open("/proc/cpuinfo") as f:
            logical = sum(1 for ln in f if ln.startswith("processor"))
    except OSError:
        logical = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    affinity = (len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity") else None)
    lines = [f"- CPU: {cpu}",
             f"- logical processors in /proc/cpuinfo: {logical}; "
             f"os.cpu_count(): {os.cpu_count()}; usable (affinity): "
             f"{affinity}",
             f"- memory: {mem:.1f} GiB",
             f"- platform: {platform.platform()}"]
    if ARGS.device == "gpu":
        lines.append(f"- GPU: {gpu_name()}")
    return lines


def gpu_name():
    try:
        if BACKEND == "jax":
            import jax
            return str(jax.devices("gpu")[0].device_kind)
        if HAVE_TORCH:
            import torch
            return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    return "unknown"


def source_state():
    """The keras_lrn source measured: git commit, and uncommitted changes."""
    import hashlib
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(
        keras_lrn.__file__)))
    try:
        head = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--",
             "keras_lrn"], capture_output=True, text=True,
            timeout=10).stdout.split("\n")
        dirty = [ln[3:] for ln in dirty if ln.strip()]
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", []
    digest = hashlib.sha256()
    pkg = os.path.dirname(os.path.abspath(keras_lrn.__file__))
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            with open(os.path.join(pkg, name), "rb") as f:
                digest.update(f.read())
    text = f"keras_lrn source: {pkg}"
    if head:
        text += f", git {head}"
        text += (f" + uncommitted changes in {', '.join(dirty)}" if dirty
                 else " (clean)")
    return text + f"; sha256 of keras_lrn/*.py {digest.hexdigest()[:12]}"


def versions():
    out = [f"python {platform.python_version()}", f"numpy {np.__version__}"]
    for mod in ("tensorflow", "keras", "torch", "jax", "jaxlib", "keras_lrn"):
        if mod == "tensorflow" and BACKEND != "tensorflow":
            # never import TF on the JAX path; report the installed version
            try:
                from importlib.metadata import version
                out.append(f"tensorflow {version('tensorflow')} (not used)")
            except Exception:  # noqa: BLE001
                out.append("tensorflow not installed")
            continue
        if mod == "torch" and not HAVE_TORCH:
            out.append("torch not used")
            continue
        if importlib.util.find_spec(mod) is None:
            out.append(f"{mod} not installed")
            continue
        m = __import__(mod)
        out.append(f"{mod} {getattr(m, '__version__', '?')}")
    out.append(f"keras backend: {keras.backend.backend()}")
    return out


def plot(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xla = "XLA" if BACKEND == "tensorflow" else "jit"
    ctxs = [xla] + (["tf.function"] if BACKEND == "tensorflow" else [])
    fig, ax = plt.subplots(figsize=(11, 5.5))
    styles = {("across", xla): ("C0", "-", "o"),
              ("across", "tf.function"): ("C0", "--", "s"),
              ("within", xla): ("C1", "-", "o"),
              ("within", "tf.function"): ("C1", "--", "s")}
    for mode in ("across", "within"):
        for ctx in ctxs:
            pts = [(s, find(impl="ours", shape=MAIN, dtype="float32",
                            mode=mode, size=s, ctx=ctx, pas="fwd"))
                   for s in WINDOW_SIZES]
            pts = [(s, c.median) for s, c in pts if c]
            if pts:
                col, ls, mk = styles[(mode, ctx)]
                ax.plot(*zip(*pts), color=col, linestyle=ls, marker=mk,
                        label=f"ours {mode}-channel, {ctx}")
    # native across op at each size (markers) and at size 5 (line)
    for ctx, col in (("tf.function", "C3"), ("XLA", "C4")):
        pts = [(s, find(impl="tf.nn (native)", shape=MAIN, size=s, ctx=ctx,
                        pas="fwd")) for s in WINDOW_SIZES]
        pts = [(s, c.median) for s, c in pts if c]
        n5 = dict(pts).get(5)
        if n5:
            ax.axhline(n5, color=col, linestyle=":",
                       label=f"tf.nn LRN (native, across) size 5, {ctx}")
            ax.plot(*zip(*pts), color=col, linestyle="none", marker="x",
                    label=f"tf.nn LRN at each size, {ctx}")
    for impl, col, lab in (("numpy copy", "k", "floor: numpy copy"),
                           ("x*2", "0.5", f"floor: x*2 ({xla})")):
        c = find(impl=impl, shape=MAIN, dtype="float32")
        if c:
            ax.axhline(c.median, color=col, linestyle="-.", linewidth=1,
                       label=lab)
    ax.set_xticks(WINDOW_SIZES)
    ax.set_xlabel("window size")
    ax.set_ylabel("forward time, ms (median)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"LRN forward, {shape_str(MAIN)} float32, "
                 f"{keras.backend.backend()} on {ARGS.device}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(t_warm, t_timed, checks, t_total):
    lines = [f"# keras-lrn benchmark ({keras.backend.backend()}, "
             f"{ARGS.device})", ""]
    lines += ["Generated by `benchmarks/lrn_bench.py`; do not edit by hand.",
              ""]
    now = datetime.datetime.now().astimezone()
    lines.append(f"- date: {now:%Y-%m-%d %H:%M %Z}")
    lines.append("- command: `" + " ".join(
        [f"KERAS_BACKEND={BACKEND}", "python"] + sys.argv) + "`")
    lines += machine_info()
    lines.append("- versions: " + ", ".join(versions()))
    lines.append("- " + SOURCE_STATE)
    lines += ["", "## Method", "",
              f"All {len(CANDS)} candidates run in one process. Each is "
              f"called once (the *first call* column: tracing and "
              f"compilation included), then {ARGS.warmup} more times "
              f"untimed; then {REPS} repetitions, each calling every "
              "candidate once in a fixed round-robin order (interleaved). "
              "Tables give the median and min over the repetitions. "
              f"Warm-up took {t_warm:.0f} s, the timed repetitions "
              f"{t_timed:.0f} s, the whole run {t_total:.0f} s.",
              "",
              "Forward+backward is `GradientTape` (TF) / `jax.grad` (JAX) / "
              "`torch.autograd.grad` of `sum(y * g)` for a fixed random `g`, "
              "returning dx. Our layer is called as a Keras layer "
              "(`implementation='auto'`, which on CPU is the portable path: "
              "XLA-compiled forward and backward on TensorFlow); "
              "`ours[native]` is `implementation='native'`. `tf.nn (native)`"
              " is `tf.nn.local_response_normalization` called directly, "
              "with TensorFlow's own gradient. PyTorch runs "
              "`torch.nn.functional.local_response_norm` on the NCHW "
              "transpose of the same tensor, all threads, with the "
              "arguments of `LocalResponseNormalization(...).to_torch()` "
              "(alpha scaled by size), so it computes the same function. "
              f"Parameters: alpha={ALPHA}, beta={BETA}, bias={BIAS}; "
              "input uniform in [0, 50).",
              "",
              "*x floor*: median / median of the floor on the same tensor "
              "(the numpy copy on CPU, the jitted `x * 2` on GPU). "
              "*x native*: median / median of `tf.nn.local_response_"
              "normalization` in the same context (eager, tf.function, XLA) "
              "and pass; for within-channel rows it is still the native "
              "across-channel op (the only native LRN).",
              "",
              "**Noise.** The machine is shared with other developers "
              "(2 cores here), so single timings vary by tens of percent; "
              "the interleaving puts every candidate under the same load "
              "and medians damp the outliers, but ratios near a threshold "
              "(within ~15%) should be re-measured before being relied "
              "upon.",
              "",
              "**Cold calls.** A repetition of the full run lasts ~10-15 s, "
              "so every candidate is called after seconds of other work: "
              "its thread pool has gone to sleep and its data left the "
              "caches. That penalizes the multi-threaded XLA / TensorFlow "
              "kernels against the single-threaded numpy copy: in a "
              "standalone check (conv1, across, XLA forward) a 0.3 s sleep "
              "before each call raised our time from 8.6 to 13.4 ms and "
              "`x * 2` under XLA from 4.1 to 5.7 ms, while the copy went "
              "from 3.8 to 3.3 ms (ratio to the copy 2.3 -> 4.1). "
              "`--calls-per-rep N` times N back-to-back calls per "
              f"repetition instead (this run: {ARGS.calls_per_rep}).", ""]
    if checks:
        lines += ["## Agreement", ""]
        lines += [f"- {n}: max |diff| / max |ref| = {e:.1e}"
                  for n, e in checks]
        lines.append("")
    lines += ["## Targets", "",
              f"Evaluated automatically on {shape_str(MAIN)} float32 "
              "(medians).", ""]
    lines += ["Verdicts use the medians; the ratio of the minimum times "
              "(closer to an unloaded machine) is given beside them.", ""]
    for name, met, detail in targets():
        mark = {True: "met", False: "**NOT met**", None: "n/a"}[met]
        lines.append(f"- {name}: {mark} ({detail})")
    lines.append("")
    lines += result_tables()
    return "\n".join(lines) + "\n"


def result_tables():
    lines = []
    for name, shape in SHAPES.items():
        lines += [f"## {SHAPE_LABEL[name]}: {shape_str(shape)} (NHWC)", ""]
        rows = [c for c in CANDS if c.shape == shape and (
            c.size in (0, 5) or c.impl in ("numpy copy", "x*2"))]
        rows = [c for c in rows if name != "main" or c.dtype == "float32"]
        lines += table_rows(rows)
        lines.append("")
        tr = torch_ratios(shape)
        if tr:
            lines += ["Ours vs PyTorch (our best context vs torch):", ""]
            lines += tr + [""]
        if name == "main":
            lines += [f"### Window size ({shape_str(shape)} float32, "
                      "forward)", ""]
            lines += size_table(shape)
            lines.append("")
            if HALF_DTYPES:
                lines += [f"### Half precision ({shape_str(shape)}, our "
                          "layer, size 5)", ""]
                rows = [c for c in CANDS if c.shape == shape
                        and c.dtype in HALF_DTYPES]
                lines += table_rows(rows)
                lines += ["", "(x floor: against the copy of the half "
                          "tensor; float32 rows are in the table above.)",
                          ""]
    return lines


def size_table(shape):
    ctxs = (["XLA", "tf.function"] if BACKEND == "tensorflow" else ["jit"])
    impls = [("ours", "across"), ("ours", "within")]
    if BACKEND == "tensorflow":
        impls.append(("tf.nn (native)", "across"))
    if HAVE_TORCH:
        impls.append(("torch", "across"))
    head = "| impl | mode | context | " + " | ".join(
        f"size {s} ms" for s in WINDOW_SIZES) + " | largest / size 5 |"
    out = [head, "|" + "---|" * (4 + len(WINDOW_SIZES))]
    for impl, mode in impls:
        for ctx in (ctxs if impl != "torch" else ["eager"]):
            cells = [find(impl=impl, shape=shape, dtype="float32", mode=mode,
                          size=s, ctx=ctx, pas="fwd") for s in WINDOW_SIZES]
            if not any(cells):
                continue
            five = cells[WINDOW_SIZES.index(5)] if 5 in WINDOW_SIZES else None
            grow = ratio(cells[-1], five) if cells[-1] and five else None
            out.append(f"| {impl} | {mode} | {ctx} | " + " | ".join(
                fmt(c.median) if c else "" for c in cells)
                + f" | {fmt(grow)} |")
    return out


def summary_ratios():
    """Short stdout summary: ours vs copy, vs native, vs torch."""
    out = ["", "## Ratios (main shape, float32, size 5; median/median)", ""]
    for c in CANDS:
        if (c.impl == "ours" and c.shape == MAIN and c.dtype == "float32"
                and c.size == 5 and c.times):
            fl, nat = floor_of(c), native_of(c)
            parts = [f"{fmt(ratio(c, fl))}x floor"]
            if nat:
                parts.append(f"{fmt(ratio(c, nat))}x native")
            out.append(f"- ours {c.mode} {c.ctx} {c.pas}: {c.median:.2f} ms "
                       "= " + ", ".join(parts))
    out += torch_ratios(MAIN)
    return out


SOURCE_STATE = "keras_lrn source: unknown"


def main():
    global SOURCE_STATE
    t0 = time.perf_counter()
    SOURCE_STATE = source_state()  # at import time of keras_lrn, not at the end
    log = sys.stderr
    print(f"# backend {BACKEND}, device {ARGS.device}, torch "
          f"{'on' if HAVE_TORCH else 'off'}, reps {REPS}", file=log,
          flush=True)
    if BACKEND == "tensorflow":
        build_tensorflow()
        checks = check_tensorflow()
    else:
        build_jax()
        checks = check_jax()
    t_warm, t_timed = run_all(log)
    t_total = time.perf_counter() - t0
    text = report(t_warm, t_timed, checks, t_total)
    print(text)
    print("\n".join(summary_ratios()))
    if ARGS.output:
        with open(ARGS.output, "w") as f:
            f.write(text)
        print(f"# wrote {ARGS.output}", file=log)
    if ARGS.plot:
        plot(ARGS.plot)
        print(f"# wrote {ARGS.plot}", file=log)
    print(f"# total {time.perf_counter() - t0:.0f} s", file=log)


if __name__ == "__main__":
    main()
