"""Benchmark keras_lrn's LocalResponseNormalization against its floors and rivals.

Run from the repository root:

    python -m benchmarks.lrn_bench                       # full run, 5-10 min
    python -m benchmarks.lrn_bench --quick               # smoke run, seconds
    python -m benchmarks.lrn_bench --output benchmarks/RESULTS.md \
        --plot benchmarks/window_size.png
    KERAS_BACKEND=jax python -m benchmarks.lrn_bench --device gpu  # CUDA box

(`python benchmarks/lrn_bench.py ...` works too; the full run of
benchmarks/RESULTS.md took 569 s on the 2-core CPU while other jobs shared
it.) Every candidate is timed in one process, interleaved round-robin
(benchmarks/timing.py); reported are the median and min of the repetitions
after warm-up, and the first call (tracing and compilation included)
separately.

With the TensorFlow backend (the default where TensorFlow is installed) our
layer runs eagerly, in a plain `tf.function` and in
`tf.function(jit_compile=True)`, beside `tf.nn.local_response_normalization`
and TF's own XLA-compiled `x * 2.0` on the same tensor, the framework's floor
(benchmarks/tf_cases.py). With KERAS_BACKEND=jax it runs eagerly and under
`jax.jit`, on the CPU or (`--device gpu`) a GPU; TensorFlow is never imported
there. PyTorch's `torch.nn.functional.local_response_norm` (NCHW, all
threads; on a GPU also `torch.compile`d) is timed where torch is installed
(benchmarks/peer_cases.py).
"""

import argparse
import importlib.util
import os
import shlex
import sys
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` a package
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

from benchmarks import backends_bench, report, timing  # noqa: E402

FULL_CPU_SHAPES = {
    "conv1": (32, 55, 55, 96),  # AlexNet conv1 output, batch 32
    "conv2": (32, 27, 27, 256),  # AlexNet conv2 output, batch 32
    "small": (8, 13, 13, 64),
    "large": (64, 55, 55, 96),
}
GPU_SHAPES = {"conv1, batch 128": (128, 55, 55, 96)}
QUICK_SHAPES = {"quick": (2, 9, 9, 16)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one tiny shape, window sizes 5 and 15, "
                        "bfloat16, 3 repetitions")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--backend", choices=("auto", "tensorflow", "jax"),
                   default="auto",
                   help="auto: $KERAS_BACKEND if set, else tensorflow where "
                        "installed, else jax")
    p.add_argument("--shape", default=None,
                   help="the main shape, NHWC, e.g. 32x55x55x96 (the only "
                        "one measured when given)")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per candidate (default 21; "
                        "--quick: 3)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed calls after the first one (default 2)")
    p.add_argument("--calls-per-rep", type=int, default=None,
                   help="back-to-back calls timed together per candidate and"
                        " repetition, waiting for the last result only "
                        "(per-call mean recorded; default 1 on CPU: every "
                        "call is cold; 20 on GPU: throughput)")
    p.add_argument("--output", default=None,
                   help="also write the markdown report to this file")
    p.add_argument("--plot", default=None,
                   help="write a time-vs-window-size plot (PNG) here")
    p.add_argument("--no-torch", action="store_true",
                   help="skip PyTorch even where it is installed")
    p.add_argument("--torch-compile", action="store_true",
                   help="also time torch.compile'd LRN (always on with "
                        "--device gpu)")
    return p.parse_args(argv)


def resolve_backend(choice):
    if choice == "auto":
        choice = os.environ.get("KERAS_BACKEND")
        if not choice:
            choice = ("tensorflow"
                      if importlib.util.find_spec("tensorflow") is not None
                      else "jax")
    if choice not in ("tensorflow", "jax"):
        sys.exit(f"lrn_bench: backend {choice!r} is not supported "
                 "(tensorflow or jax)")
    return choice


def configure_environment(backend, device):
    """Selects the Keras backend and hides the other device before Keras is
    imported; once it is (the benchmark called from a test), checks that the
    backend matches and leaves the environment alone."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            sys.exit(f"lrn_bench: Keras already runs on "
                     f"{keras.backend.backend()}, not {backend}")
        return
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu" and backend == "jax":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if device == "cpu" and backend == "tensorflow":
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def make_setup(args, backend):
    if args.quick:
        shapes, sizes, halves, reps = QUICK_SHAPES, (5, 15), ("bfloat16",), 3
    elif args.device == "gpu":
        shapes, sizes = GPU_SHAPES, (3, 5, 9, 15)
        halves, reps = ("float16", "bfloat16"), 21
    else:
        shapes, sizes = FULL_CPU_SHAPES, (3, 5, 9, 15)
        halves, reps = ("float16", "bfloat16"), 21
    if args.shape:
        shapes = {"main": timing.parse_shape(args.shape)}
    return timing.Setup(
        backend=backend, device=args.device, shapes=dict(shapes),
        window_sizes=sizes, half_dtypes=halves,
        torch=(not args.no_torch
               and importlib.util.find_spec("torch") is not None),
        torch_compile=args.torch_compile or args.device == "gpu",
        reps=args.reps or reps, warmup=args.warmup,
        calls_per_rep=args.calls_per_rep or (
            20 if args.device == "gpu" else 1))


def main(argv=None):
    """Runs the benchmark; returns the markdown report."""
    args = parse_args(argv)
    backend = resolve_backend(args.backend)
    configure_environment(backend, args.device)
    t0 = time.perf_counter()
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    setup = make_setup(args, backend)
    source = report.source_state()  # the code measured, before it runs
    log = sys.stderr
    print(f"# backend {backend}, device {setup.device}, torch "
          f"{'on' if setup.torch else 'off'}, reps {setup.reps}", file=log,
          flush=True)
    bench = timing.Bench(setup)
    from benchmarks import peer_cases

    torch_cases = peer_cases.add_torch_cases if setup.torch else None
    torch_forward = peer_cases.torch_forward if setup.torch else None
    if backend == "tensorflow":
        from benchmarks import tf_cases

        tf_cases.add_cases(bench, torch_cases)
        checks = tf_cases.agreement(bench, torch_forward)
    else:
        peer_cases.add_jax_cases(bench, torch_cases)
        checks = peer_cases.jax_agreement(bench, torch_forward)
    bench.run(log)
    plain = (tf_cases.plain_graph_lines(bench) if backend == "tensorflow"
             else [])
    if plain:
        plain = ["## Plain graph (`tf.function` without jit_compile)", "",
                 f"{timing.shape_str(setup.main)} float32, across, size 5, "
                 "forward, medians:", ""] + plain
    command = f"KERAS_BACKEND={backend} " + shlex.join(
        ["python", "-m", "benchmarks.lrn_bench"]
        + list(sys.argv[1:] if argv is None else argv))
    # the machine as numbers (load, CPU, memory, versions, commit), no free text
    header = []
    if load_start:
        header.append("- load average at the start (1, 5, 15 min): "
                      + ", ".join(f"{v:.2f}" for v in load_start))
    kept_section = None
    if args.output and os.path.exists(args.output):
        with open(args.output) as f:
            previous = f.read()
        if backends_bench.BEGIN in previous and backends_bench.END in previous:
            kept_section = (backends_bench.BEGIN + previous.split(
                backends_bench.BEGIN, 1)[1].split(backends_bench.END, 1)[0]
                + backends_bench.END + "\n")
    text = report.markdown(bench, command, checks, plain, source,
                           time.perf_counter() - t0, header)
    print(text)
    print("\n".join(report.summary_lines(bench)))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
        if kept_section:  # benchmarks/backends_bench.py's tables
            backends_bench.write_section(args.output, kept_section)
        print(f"# wrote {args.output}", file=log)
    if args.plot:
        report.plot(bench, args.plot)
        print(f"# wrote {args.plot}", file=log)
    print(f"# total {time.perf_counter() - t0:.0f} s", file=log)
    return text


if __name__ == "__main__":
    main()
