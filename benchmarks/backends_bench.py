"""Which primitive computes LRN fastest on each backend.

Run from the repository root, once per backend:

    KERAS_BACKEND=jax python -m benchmarks.backends_bench
    KERAS_BACKEND=torch python -m benchmarks.backends_bench
    KERAS_BACKEND=tensorflow python -m benchmarks.backends_bench

(`python benchmarks/backends_bench.py` works too.)

Times the forward pass (and forward + backward) of AlexNet's conv1 LRN
(32x55x55x96 float32, size 5) through `keras_lrn.ops` as shipped, beside the
backend primitives it could use instead: on JAX the window sum as
`jax.lax.reduce_window` and the whole call under `jax.jit`; on PyTorch
`torch.nn.functional.local_response_norm` (NCHW, and NHWC through
`movedim`); on TensorFlow, inside a plain `tf.function`, the XLA `jit_scope`
the ops are written in beside a nested `tf.function(jit_compile=True)`.
Candidates are called round-robin, so the load of other
processes spreads evenly; the median of the repetitions is reported in ms.
The output of the run the decisions in keras_lrn/ops.py rest on is in
benchmarks/backends_results.txt.
"""

import os
import platform
import sys

if __package__ in (None, ""):  # run as a script: make `benchmarks` a package
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_lrn  # noqa: E402
from benchmarks import timing  # noqa: E402
from benchmarks.timing import ALPHA, BETA, BIAS  # noqa: E402

SHAPE = (32, 55, 55, 96)
SIZE = 5


def block(value):
    """Waits for an asynchronously computed result."""
    if hasattr(value, "block_until_ready"):
        value.block_until_ready()
    return value


def keras_lrn_call(x):
    return keras_lrn.ops.local_response_normalization(
        x, size=SIZE, alpha=ALPHA, beta=BETA, bias=BIAS)


def jax_candidates(x_nhwc):
    import jax
    import jax.numpy as jnp

    def reduce_window_lrn(x):
        squares = jnp.square(x)
        total = jax.lax.reduce_window(
            squares, 0.0, jax.lax.add, (1, 1, 1, SIZE), (1, 1, 1, 1),
            [(0, 0), (0, 0), (0, 0), (SIZE // 2, SIZE // 2)])
        return x * jax.lax.rsqrt(BIAS + ALPHA * total) ** 1.5

    def loss(function):
        return jax.grad(lambda t: jnp.sum(function(t)))

    x = jnp.asarray(x_nhwc)
    return {
        "keras_lrn.ops (as shipped)": lambda: keras_lrn_call(x),
        "jax.jit(keras_lrn.ops)": (lambda f: lambda: f(x))(
            jax.jit(keras_lrn_call)),
        "jax.jit(reduce_window)": (lambda f: lambda: f(x))(
            jax.jit(reduce_window_lrn)),
        "grad: keras_lrn.ops (as shipped)": (lambda f: lambda: f(x))(
            loss(keras_lrn_call)),
        "grad: jax.jit(keras_lrn.ops)": (lambda f: lambda: f(x))(
            jax.jit(loss(keras_lrn_call))),
        "grad: jax.jit(reduce_window)": (lambda f: lambda: f(x))(
            jax.jit(loss(reduce_window_lrn))),
    }


def torch_candidates(x_nhwc):
    import torch
    import torch.nn.functional as F

    torch_alpha = ALPHA * SIZE  # torch divides alpha by size

    def torch_lrn_nhwc(x):
        return F.local_response_norm(
            x.movedim(-1, 1), SIZE, torch_alpha, BETA, BIAS).movedim(1, -1)

    def with_grad(function, x):
        def run():
            leaf = x.detach().requires_grad_()
            function(leaf).sum().backward()
            return leaf.grad
        return run

    x = torch.from_numpy(x_nhwc)
    x_nchw = x.movedim(-1, 1).contiguous()

    def keras_lrn_nchw(t):
        return keras_lrn.ops.local_response_normalization(
            t, size=SIZE, alpha=ALPHA, beta=BETA, bias=BIAS,
            data_format="channels_first")

    return {
        "keras_lrn.ops NHWC (as shipped)": lambda: keras_lrn_call(x),
        "keras_lrn.ops NCHW (as shipped)": lambda: keras_lrn_nchw(x_nchw),
        "F.local_response_norm NCHW": lambda: F.local_response_norm(
            x_nchw, SIZE, torch_alpha, BETA, BIAS),
        "F.local_response_norm NHWC (movedim)": lambda: torch_lrn_nhwc(x),
        "grad: keras_lrn.ops NHWC (as shipped)": with_grad(keras_lrn_call, x),
        "grad: F.local_response_norm NHWC (movedim)": with_grad(
            torch_lrn_nhwc, x),
    }


def tensorflow_candidates(x_nhwc):
    """In a plain `tf.function`: the ops inline in an XLA `jit_scope` (as
    shipped, which tf2onnx can export), beside a call to a nested
    `tf.function(jit_compile=True)` (the way before, which it cannot)."""
    import tensorflow as tf

    from keras_lrn import _kernels

    window = _kernels.BoxWindow.of(x_nhwc.shape, SIZE, "across_channels",
                                   "channels_last", "after")

    structure = _kernels.Structure(window, "float32", len(SHAPE), BETA,
                                   False, ())

    def formula(t):
        coefficients = _kernels.coefficients(ALPHA, BETA, BIAS, None,
                                             "float32")
        return _kernels.forward(t, coefficients, structure)[0]

    nested = tf.function(formula, jit_compile=True)
    x = tf.constant(x_nhwc)
    shipped = tf.function(keras_lrn_call)
    before = tf.function(lambda t: nested(t))
    plain = tf.function(formula)
    return {
        "tf.function(keras_lrn.ops) (as shipped)": lambda: shipped(x).numpy(),
        "tf.function(nested jit_compile function)": lambda: before(x).numpy(),
        "tf.function(ops, no XLA)": lambda: plain(x).numpy(),
    }


def main(shape=SHAPE, repetitions=None):
    """Times every candidate of the current backend, interleaved, and
    prints the medians; returns the `timing.Bench`."""
    shape = tuple(shape)
    repetitions = repetitions or int(os.environ.get("BENCH_REPS", 11))
    backend = keras.backend.backend()
    x = np.random.default_rng(0).uniform(0, 10, shape).astype("float32")
    if backend == "jax":
        candidates = jax_candidates(x)
    elif backend == "torch":
        candidates = torch_candidates(x)
    else:
        candidates = tensorflow_candidates(x)
    bench = timing.Bench(timing.Setup(backend=backend, shapes={"": shape},
                                      reps=repetitions, warmup=1))
    for name, run in candidates.items():
        bench.add(run, impl=name, shape=shape, ctx="", pas="", sync=block)
    bench.run()
    print(f"backend={backend} keras={keras.__version__} "
          f"python={platform.python_version()} cpus={os.cpu_count()} "
          f"shape={shape} size={SIZE} reps={repetitions}")
    for c in bench.candidates:
        if c.error is not None:
            print(f"{c.impl:45s} failed: {c.error}")
            continue
        print(f"{c.impl:45s} median {c.median:8.2f} ms   min {c.min:8.2f} ms")
    return bench


if __name__ == "__main__":
    main()
