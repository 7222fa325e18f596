"""Timing utilities shared by the benchmarks: candidates, interleaved runs.

Every candidate is timed in one process, interleaved: each repetition calls
every candidate once, in a fixed round-robin order, so that the load of other
processes on a shared machine spreads evenly over all of them. Importing this
module has no side effects and needs only NumPy.
"""

import dataclasses
import statistics
import time

import numpy as np

# AlexNet's LRN hyperparameters (the paper's: alpha per term of the sum)
ALPHA, BETA, BIAS = 1e-4, 0.75, 2.0
MODES = ("across_channels", "within_channel")
SHORT = {"across_channels": "across", "within_channel": "within"}


def parse_shape(text):
    """"32x55x55x96" -> (32, 55, 55, 96)."""
    return tuple(int(v) for v in text.lower().split("x"))


def shape_str(shape):
    return "x".join(str(v) for v in shape)


@dataclasses.dataclass
class Setup:
    """What one benchmark run measures. `shapes` maps a label to an NHWC
    shape; the first one is the main shape, the one window sizes, half
    precision and the targets are measured on."""

    backend: str = "tensorflow"
    device: str = "cpu"
    shapes: dict = dataclasses.field(
        default_factory=lambda: {"conv1": (32, 55, 55, 96)})
    window_sizes: tuple = (3, 5, 9, 15)
    half_dtypes: tuple = ("float16", "bfloat16")
    torch: bool = False
    torch_compile: bool = False
    reps: int = 21
    warmup: int = 2
    calls_per_rep: int = 1

    @property
    def main(self):
        return next(iter(self.shapes.values()))


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

    def call(self, times=1):
        """Mean ms per call of `times` back-to-back calls, waiting for the
        last result only (asynchronous devices pipeline the others)."""
        t0 = time.perf_counter()
        out = None
        for _ in range(times):
            out = self.fn()
        self.sync(out)
        return (time.perf_counter() - t0) * 1e3 / times

    @property
    def median(self):
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def min(self):
        return min(self.times) if self.times else float("nan")

    def describe(self):
        return (f"{self.impl} {self.mode} size={self.size} "
                f"{shape_str(self.shape)} {self.dtype} {self.ctx} {self.pas}")


class Bench:
    """The candidates of one run, and the look-ups the reports make."""

    def __init__(self, setup):
        self.setup = setup
        self.candidates = []
        self.t_warm = self.t_timed = 0.0

    def add(self, fn, **kw):
        c = Candidate(fn, **kw)
        self.candidates.append(c)
        return c

    def find(self, **kw):
        """The first measured candidate whose attributes equal `kw`."""
        for c in self.candidates:
            if c.error is None and c.times and all(
                    getattr(c, k) == v for k, v in kw.items()):
                return c
        return None

    def run(self, log=None, candidates=None):
        """First call and warm-up of each candidate (failures recorded, not
        raised), then the interleaved timed repetitions."""
        s = self.setup
        cands = self.candidates if candidates is None else candidates
        say = (lambda text: print(text, file=log, flush=True)) if log else (
            lambda text: None)
        say(f"# {len(cands)} candidates, first call + {s.warmup} warm-up "
            f"each, then {s.reps} interleaved repetitions of "
            f"{s.calls_per_rep} call(s)")
        t0 = time.perf_counter()
        for c in cands:
            try:
                c.first_ms = c.call()
                for _ in range(s.warmup):
                    c.call()
            except Exception as e:  # noqa: BLE001  keep going: report it
                c.error = (f"{type(e).__name__}: "
                           f"{str(e).splitlines()[0][:120] if str(e) else ''}")
                say(f"# FAILED {c.describe()}: {c.error}")
        self.t_warm = time.perf_counter() - t0
        say(f"# warm-up done in {self.t_warm:.0f} s")
        live = [c for c in cands if c.error is None]
        t1 = time.perf_counter()
        for r in range(s.reps):
            for c in live:
                c.times.append(c.call(s.calls_per_rep))
            if r == 0 or (r + 1) % 5 == 0:
                say(f"# rep {r + 1}/{s.reps} "
                    f"({time.perf_counter() - t1:.0f} s)")
        self.t_timed = time.perf_counter() - t1


def make_data(shape, seed=0):
    """Post-ReLU-like activations (uniform in [0, 50), large enough that the
    window term matters) and a fixed upstream gradient."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 50.0, shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    return x, g


def numpy_reference(x, size, mode="across_channels"):
    """float64 LRN of NHWC `x` from the formula (alpha per term)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    axes = (3,) if mode == "across_channels" else (1, 2)
    total = x * x
    for axis in axes:
        pad = [(0, 0)] * 4
        pad[axis] = (lo, hi)
        padded = np.pad(total, pad)
        n = x.shape[axis]
        total = sum(np.take(padded, range(i, i + n), axis=axis)
                    for i in range(size))
    return x / (BIAS + ALPHA * total) ** BETA


def rel_err(y, ref):
    """max |y - ref| / max |ref|."""
    y = np.asarray(y, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


def ulp_error(y, ref, dtype):
    """Largest |y - ref| in units in the last place of `dtype` at ref, and
    the fraction of elements more than one unit off (a single rounding of
    the exact result is at most half a unit)."""
    import ml_dtypes

    finfo = ml_dtypes.finfo(dtype)
    ref = np.asarray(ref, dtype=np.float64)
    exponent = np.floor(np.log2(np.maximum(np.abs(ref), float(finfo.tiny))))
    ulps = np.abs(np.asarray(y).astype(np.float64) - ref) / 2.0 ** (
        exponent - finfo.nmant)
    return float(np.max(ulps)), float(np.mean(ulps > 1.0))


def fmt(v, digits=2):
    """`v` with `digits` decimals; a nonzero value that would round to zero
    there keeps two significant digits instead ("0.0042", not "0.00"), so a
    table never shows a measured time or ratio as nothing."""
    if v is None or v != v:
        return ""
    if v != 0 and abs(v) < 0.5 * 10.0 ** -digits:
        return f"{v:.2g}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    """Median of candidate a over median of candidate b (None if either is
    missing)."""
    if a is None or b is None:
        return None
    return a.median / b.median


def our_layer(mode, size, implementation="auto", dtype=None):
    """keras_lrn's layer with the benchmark's hyperparameters; `dtype` sets
    its dtype policy (a float32 layer would cast half inputs to float32)."""
    import keras_lrn

    return keras_lrn.LocalResponseNormalization(
        size=size, alpha=ALPHA, beta=BETA, bias=BIAS, mode=mode,
        data_format="channels_last", implementation=implementation,
        dtype=dtype)


def torch_params(size):
    """torch.nn.functional.local_response_norm's arguments computing the
    same function as `our_layer("across_channels", size)`."""
    return our_layer("across_channels", size).to_torch()
