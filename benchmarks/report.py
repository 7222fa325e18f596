"""The markdown report of a benchmark run: machine, method, targets, tables.

Functions take the run's `timing.Bench`; importing this module imports
nothing beyond the standard library and the timing module.
"""

import datetime
import hashlib
import importlib.util
import os
import platform
import subprocess

from benchmarks.timing import fmt, ratio, shape_str


def floor_of(bench, c):
    """The floor a row is compared with: numpy copy (CPU) else jitted x*2."""
    return (bench.find(impl="numpy copy", shape=c.shape, dtype=c.dtype)
            or bench.find(impl="x*2", shape=c.shape, dtype=c.dtype))


def xla_floor_of(bench, c):
    """The framework's own compiled `x * 2.0` on the same tensor."""
    return bench.find(impl="x*2", shape=c.shape, dtype=c.dtype)


def native_of(bench, c):
    if c.impl == "tf.nn (native)" or c.dtype != "float32":
        return None
    return bench.find(impl="tf.nn (native)", shape=c.shape, size=c.size,
                      ctx=c.ctx, pas=c.pas)


def best_ours(bench, shape, mode, pas, dtype="float32", size=5):
    best = None
    for c in bench.candidates:
        if (c.impl == "ours" and c.shape == shape and c.mode == mode
                and c.pas == pas and c.dtype == dtype and c.size == size
                and c.error is None and c.times):
            if best is None or c.median < best.median:
                best = c
    return best


def table_rows(bench, cands):
    head = ("| impl | mode | size | dtype | context | pass | median ms "
            "| min ms | first call ms | x floor | x XLA x*2 "
            "| x native (same ctx) |")
    out = [head, "|" + "---|" * 12]
    for c in cands:
        if c.error is not None:
            out.append(f"| {c.impl} | {c.mode} | {c.size or ''} | {c.dtype} "
                       f"| {c.ctx} | {c.pas} | failed: {c.error} "
                       "| | | | | |")
            continue
        fl, xla = floor_of(bench, c), xla_floor_of(bench, c)
        nat = native_of(bench, c) if c.impl.startswith("ours") else None
        out.append(
            f"| {c.impl} | {c.mode} | {c.size or ''} | {c.dtype} | {c.ctx} "
            f"| {c.pas} | {fmt(c.median)} | {fmt(c.min)} "
            f"| {fmt(c.first_ms, 0)} "
            f"| {fmt(ratio(c, fl)) if fl is not c else ''} "
            f"| {fmt(ratio(c, xla)) if xla is not c else ''} "
            f"| {fmt(ratio(c, nat))} |")
    return out


def torch_ratios(bench, shape):
    lines = []
    for pas in ("fwd", "fwd+bwd"):
        o = best_ours(bench, shape, "across", pas)
        for ctx in ("eager", "torch.compile"):
            t = bench.find(impl="torch", shape=shape, ctx=ctx, pas=pas,
                           size=5)
            if t and o:
                lines.append(
                    f"- across, {pas}: ours best ({o.ctx}) {o.median:.2f} ms"
                    f" vs torch {ctx} {t.median:.2f} ms: "
                    f"**{t.median / o.median:.1f}x faster**")
    return lines


def targets(bench):
    """[(target, met|None, detail)] on the main shape, float32."""
    s = bench.setup
    xla = "XLA" if s.backend == "tensorflow" else "jit"
    graph = "tf.function"
    out = []

    def g(**kw):
        return bench.find(shape=s.main, dtype="float32", **kw)

    copy = g(impl="numpy copy") or g(impl="x*2")
    floor_name = "numpy copy" if copy and copy.impl == "numpy copy" else "x*2"
    xla_x2 = g(impl="x*2")
    nat_graph = g(impl="tf.nn (native)", size=5, ctx=graph, pas="fwd")

    tf_only = ("1a.", "2a.", "2b.", "3.", "4b.")

    def check(name, a, b, op, bound, how):
        if s.backend != "tensorflow" and name.startswith(tf_only):
            return  # compares with tf.nn or a plain tf.function
        if a is None or b is None:
            out.append((name, None, "not measured in this run"))
            return
        r = a.median / b.median
        met = {"<=": r <= bound, "<": r < bound}[op]
        out.append((name, met, f"{how}: {a.median:.2f} / {b.median:.2f} ms "
                               f"= {r:.2f} ({op} {bound:.3g} required); "
                               f"ratio of the mins {a.min / b.min:.2f}"))

    ours_xla = g(impl="ours", mode="across", size=5, ctx=xla, pas="fwd")
    check(f"1a. across fwd ({xla}) >= 3x faster than native op ({xla})",
          ours_xla, g(impl="tf.nn (native)", size=5, ctx="XLA", pas="fwd"),
          "<=", 1 / 3, "ours / native")
    check(f"1b. across fwd ({xla}) within 2x of the {floor_name}",
          ours_xla, copy, "<=", 2.0, f"ours / {floor_name}")
    for impl in ("ours", "ours[portable]"):
        c = g(impl=impl, mode="across", size=5, ctx=graph, pas="fwd")
        which = "default LRN()" if impl == "ours" else impl
        check(f"2a. across fwd ({graph}), {which}: >= 1.7x faster than "
              f"tf.nn ({graph})", c, nat_graph, "<=", 1 / 1.7,
              "ours / tf.nn")
        check(f"2b. across fwd ({graph}), {which}: within 2.2x of TF's "
              "XLA-compiled x * 2.0", c, xla_x2, "<=", 2.2, "ours / x*2")
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
        o = best_ours(bench, s.main, "across", pas)
        check(f"5. across {pas}: best context >= 10x faster than torch "
              "eager", o, g(impl="torch", size=5, ctx="eager", pas=pas),
              "<=", 0.1, f"ours ({o.ctx if o else '?'}) / torch")
        if s.device == "gpu":
            check(f"6. across {pas}: best context faster than torch.compile",
                  o, g(impl="torch", size=5, ctx="torch.compile", pas=pas),
                  "<", 1.0, f"ours ({o.ctx if o else '?'}) / torch.compile")
    if s.device == "gpu":  # issue 13's targets, against the jitted x * 2.0
        for name, mode, pas, bound in (
                ("across fwd", "across", "fwd", 1.15),
                ("across fwd+bwd", "across", "fwd+bwd", 2.5),
                ("within fwd size 5", "within", "fwd", 2.0)):
            check(f"GPU. {name} (jit) <= {bound}x the copy floor",
                  g(impl="ours", mode=mode, size=5, ctx="jit", pas=pas),
                  xla_x2, "<=", bound, "ours / x*2")
    return out


def size_table(bench, shape):
    s = bench.setup
    ctxs = ["XLA", "tf.function"] if s.backend == "tensorflow" else ["jit"]
    impls = [("ours", "across"), ("ours", "within")]
    if s.backend == "tensorflow":
        impls.append(("tf.nn (native)", "across"))
    if s.torch:
        impls.append(("torch", "across"))
    sizes = s.window_sizes
    out = ["| impl | mode | context | " + " | ".join(
        f"size {v} ms" for v in sizes) + " | largest / size 5 |",
        "|" + "---|" * (4 + len(sizes))]
    for impl, mode in impls:
        for ctx in (ctxs if impl != "torch" else ["eager"]):
            cells = [bench.find(impl=impl, shape=shape, dtype="float32",
                                mode=mode, size=v, ctx=ctx, pas="fwd")
                     for v in sizes]
            if not any(cells):
                continue
            five = cells[sizes.index(5)] if 5 in sizes else None
            grow = ratio(cells[-1], five) if cells[-1] and five else None
            out.append(f"| {impl} | {mode} | {ctx} | " + " | ".join(
                fmt(c.median) if c else "" for c in cells)
                + f" | {fmt(grow)} |")
    return out


def result_tables(bench):
    s = bench.setup
    lines = []
    for label, shape in s.shapes.items():
        main = shape == s.main
        lines += [f"## {label}: {shape_str(shape)} (NHWC)", ""]
        rows = [c for c in bench.candidates if c.shape == shape and (
            c.size in (0, 5)) and (not main or c.dtype == "float32")]
        lines += table_rows(bench, rows) + [""]
        tr = torch_ratios(bench, shape)
        if tr:
            lines += ["Ours vs PyTorch (our best context vs torch):", ""]
            lines += tr + [""]
        if main and len(s.window_sizes) > 1:
            lines += [f"### Window size ({shape_str(shape)} float32, "
                      "forward)", ""]
            lines += size_table(bench, shape) + [""]
        if main and s.half_dtypes:
            lines += [f"### Half precision ({shape_str(shape)}, our layer, "
                      "size 5)", ""]
            rows = [c for c in bench.candidates if c.shape == shape
                    and c.dtype in s.half_dtypes]
            lines += table_rows(bench, rows)
            lines += ["", "(x floor: against the copy of the half tensor; "
                      "float32 rows are in the table above.)", ""]
    return lines


def summary_lines(bench):
    """Short stdout summary: ours vs floors, vs native, vs torch."""
    s = bench.setup
    out = ["", f"## Ratios ({shape_str(s.main)} float32, size 5; "
           "median/median)", ""]
    for c in bench.candidates:
        if (c.impl.startswith("ours") and c.shape == s.main
                and c.dtype == "float32" and c.size == 5 and c.times):
            parts = [f"{fmt(ratio(c, floor_of(bench, c)))}x floor"]
            xla = xla_floor_of(bench, c)
            if xla and xla is not floor_of(bench, c):
                parts.append(f"{fmt(ratio(c, xla))}x XLA x*2")
            nat = native_of(bench, c)
            if nat:
                parts.append(f"{fmt(ratio(c, nat))}x native")
            out.append(f"- {c.impl} {c.mode} {c.ctx} {c.pas}: "
                       f"{c.median:.2f} ms = " + ", ".join(parts))
    return out + torch_ratios(bench, s.main)


# ------------------------------ the machine -------------------------------

def machine_info(device):
    cpu = platform.processor() or "unknown"
    logical = None
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.readlines()
        names = [ln.split(":", 1)[1].strip() for ln in lines
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
        logical = sum(1 for ln in lines if ln.startswith("processor"))
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    affinity = (len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity") else None)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [f"- CPU: {cpu}",
             f"- logical processors in /proc/cpuinfo: {logical}; "
             f"os.cpu_count(): {os.cpu_count()}; usable (affinity): "
             f"{affinity}",
             f"- memory: {mem:.1f} GiB",
             f"- platform: {platform.platform()}"]
    if load:
        lines.append("- load average at the end (1, 5, 15 min): "
                     + ", ".join(f"{v:.2f}" for v in load))
    if device == "gpu":
        lines.append(f"- GPU: {gpu_name()}")
    return lines


def gpu_name():
    for probe in (lambda: __import__("jax").devices("gpu")[0].device_kind,
                  lambda: __import__("torch").cuda.get_device_name(0)):
        try:
            return str(probe())
        except Exception:  # noqa: BLE001  try the next framework
            pass
    return "unknown"


def source_state():
    """The keras_lrn source measured: git commit, uncommitted changes, and a
    digest of the package's modules (never the checkout's path: a report
    records the code, not where one machine keeps it)."""
    import keras_lrn

    pkg = os.path.dirname(os.path.abspath(keras_lrn.__file__))
    try:
        head = subprocess.run(
            ["git", "-C", pkg, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", pkg, "status", "--porcelain", "--", "."],
            capture_output=True, text=True, timeout=10).stdout.split("\n")
        dirty = [ln[3:] for ln in dirty if ln.strip()]
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", []
    digest = hashlib.sha256()
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            with open(os.path.join(pkg, name), "rb") as f:
                digest.update(f.read())
    text = "keras_lrn source: " + ("" if head else "not a git checkout")
    if head:
        text += f"git {head}" + (
            f" + uncommitted changes in {', '.join(dirty)}" if dirty
            else " (clean)")
    return text + f"; sha256 of keras_lrn/*.py {digest.hexdigest()[:12]}"


def versions(backend, torch_used):
    from importlib.metadata import PackageNotFoundError, version

    out = [f"python {platform.python_version()}"]
    for dist in ("numpy", "tensorflow", "keras", "torch", "jax", "jaxlib"):
        try:
            v = version(dist)
        except PackageNotFoundError:
            if dist == "tensorflow":
                try:
                    v = version("tensorflow-cpu")
                except PackageNotFoundError:
                    out.append(f"{dist} not installed")
                    continue
            else:
                out.append(f"{dist} not installed")
                continue
        unused = ((dist == "tensorflow" and backend != "tensorflow")
                  or (dist == "torch" and not torch_used))
        out.append(f"{dist} {v}" + (" (not used)" if unused else ""))
    if importlib.util.find_spec("keras_lrn") is not None:
        import keras_lrn
        out.append(f"keras_lrn {keras_lrn.__version__}")
    out.append(f"keras backend: {backend}")
    return out


# ------------------------------- the report -------------------------------

METHOD = (
    "Forward+backward is `GradientTape` (TF) / `jax.grad` (JAX) / "
    "`torch.autograd.grad` of `sum(y * g)` for a fixed random `g`, returning "
    "dx. `ours` is the layer as users get it, `LocalResponseNormalization()`"
    " with `implementation='auto'`; `ours[portable]` is "
    "`implementation='portable'` and `ours[native]` "
    "`implementation='native'`, timed in a plain `tf.function` (where "
    "'auto' has chosen differently across releases, so both rows are "
    "given). `tf.nn (native)` is `tf.nn.local_response_normalization` "
    "called directly, with TensorFlow's own gradient. PyTorch runs "
    "`torch.nn.functional.local_response_norm` on the NCHW transpose of the "
    "same tensor, all threads, with the arguments of "
    "`LocalResponseNormalization(...).to_torch()`, so it computes the same "
    "function. Parameters: alpha=0.0001 (per term), beta=0.75, bias=2.0; "
    "input uniform in [0, 50).\n\n"
    "*x floor*: median / median of the floor on the same tensor (the numpy "
    "copy on CPU, the jitted `x * 2.0` on GPU). *x XLA x\\*2*: median / "
    "median of the framework's own XLA-compiled elementwise op on the same "
    "tensor (TensorFlow: `tf.function(lambda x: x * 2.0, "
    "jit_compile=True)`; JAX: `jax.jit`), the floor for any XLA-compiled "
    "op. *x native*: median / median of `tf.nn.local_response_"
    "normalization` in the same context and pass; for within-channel rows "
    "it is still the native across-channel op (the only native LRN).\n\n"
    "**Noise.** On a shared CPU single timings vary by tens of percent; the "
    "interleaving puts every candidate under the same load and medians damp"
    " the outliers, but ratios near a threshold (within ~15%) should be "
    "re-measured before being relied upon. **Cold calls.** With one call "
    "per repetition every candidate runs after seconds of other work: its "
    "thread pool has gone to sleep and its data left the caches, which "
    "penalizes the multi-threaded XLA / TensorFlow kernels against the "
    "single-threaded numpy copy; `--calls-per-rep N` times N back-to-back "
    "calls instead.")


def markdown(bench, command, checks, extra_lines, source, t_total,
             header=()):
    s = bench.setup
    lines = [f"# keras-lrn benchmark ({s.backend}, {s.device})", "",
             "Generated by `benchmarks/lrn_bench.py`; do not edit by hand.",
             ""]
    now = datetime.datetime.now().astimezone()
    lines.append(f"- date: {now:%Y-%m-%d %H:%M %Z}")
    lines.append(f"- command: `{command}`")
    lines += list(header) + machine_info(s.device)
    lines.append("- versions: " + ", ".join(versions(s.backend, s.torch)))
    lines.append("- " + source)
    lines += ["", "## Method", "",
              f"All {len(bench.candidates)} candidates run in one process. "
              "Each is called once (the *first call* column: tracing and "
              f"compilation included), then {s.warmup} more times untimed; "
              f"then {s.reps} repetitions, each calling every candidate "
              f"{s.calls_per_rep} time(s) back to back in a fixed "
              "round-robin order (interleaved; the per-call mean is "
              "recorded). Tables give the median and min over the "
              f"repetitions. Warm-up took {bench.t_warm:.0f} s, the timed "
              f"repetitions {bench.t_timed:.0f} s, the whole run "
              f"{t_total:.0f} s.", "", METHOD, ""]
    if extra_lines:
        lines += extra_lines + [""]
    if checks:
        lines += ["## Agreement", ""]
        lines += [f"- {n}: {e:.3g}" for n, e in checks] + [""]
    lines += ["## Targets", "",
              f"Evaluated automatically on {shape_str(s.main)} float32. "
              "Verdicts use the medians; the ratio of the minimum times "
              "(closer to an unloaded machine) is given beside them.", ""]
    for name, met, detail in targets(bench):
        mark = {True: "met", False: "**NOT met**", None: "n/a"}[met]
        lines.append(f"- {name}: {mark} ({detail})")
    lines.append("")
    lines += result_tables(bench)
    return "\n".join(lines) + "\n"


def plot(bench, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = bench.setup
    sizes = s.window_sizes
    xla = "XLA" if s.backend == "tensorflow" else "jit"
    ctxs = [xla] + (["tf.function"] if s.backend == "tensorflow" else [])
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for mode, col in (("across", "C0"), ("within", "C1")):
        for ctx in ctxs:
            pts = [(v, bench.find(impl="ours", shape=s.main,
                                  dtype="float32", mode=mode, size=v,
                                  ctx=ctx, pas="fwd")) for v in sizes]
            pts = [(v, c.median) for v, c in pts if c]
            if pts:
                ax.plot(*zip(*pts), color=col,
                        linestyle="-" if ctx == xla else "--",
                        marker="o" if ctx == xla else "s",
                        label=f"ours {mode}-channel, {ctx}")
    for ctx, col in (("tf.function", "C3"), ("XLA", "C4")):
        pts = [(v, bench.find(impl="tf.nn (native)", shape=s.main, size=v,
                              ctx=ctx, pas="fwd")) for v in sizes]
        pts = [(v, c.median) for v, c in pts if c]
        if pts:
            ax.plot(*zip(*pts), color=col, linestyle=":", marker="x",
                    label=f"tf.nn LRN (native, across), {ctx}")
    for impl, col, lab in (("numpy copy", "k", "floor: numpy copy"),
                           ("x*2", "0.5", f"floor: x * 2.0 ({xla})")):
        c = bench.find(impl=impl, shape=s.main, dtype="float32")
        if c:
            ax.axhline(c.median, color=col, linestyle="-.", linewidth=1,
                       label=lab)
    ax.set_xticks(sizes)
    ax.set_xlabel("window size")
    ax.set_ylabel("forward time, ms (median)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"LRN forward, {shape_str(s.main)} float32, {s.backend} "
                 f"on {s.device}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
