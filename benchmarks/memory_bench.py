"""Memory of eager LRN calls: many configurations, many shapes.

Each measurement runs in a fresh process (resident set size from
/proc/self/status) on the backend given:

- `configs`: 300 layers with distinct alpha and bias, called eagerly on the
  same (2, 8, 8, 16) input after one warm-up call: RSS growth, and how many
  compiled structures keras-lrn holds.
- `shapes`: eager calls on 100 new input shapes (2, s, s, 16), after 5
  uncounted ones: RSS growth per shape for `keras_lrn.LRN()` and for the
  same formula written as one plain `tf.function(jit_compile=True)`
  (TensorFlow) or `jax.jit` (JAX), alternating, each in 5 processes, and
  the medians.

    python benchmarks/memory_bench.py --backend tensorflow
    python benchmarks/memory_bench.py --backend jax
"""

import argparse
import os
import statistics
import subprocess
import sys

LAYERS = 300
# New shapes measured, after WARMUP_SHAPES whose first-call costs (caches
# that fill once per process) are not counted: the slope of a long-running
# process, which 20 shapes estimated only to about +-0.1 MB.
SHAPES = 100
WARMUP_SHAPES = 5
PROCESSES = 5


def resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def plain_compiled_formula(backend):
    """AlexNet's LRN (size 5) written directly, compiled by the backend."""
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True, reduce_retracing=True)
        def lrn(x):
            padded = tf.pad(tf.square(x), [[0, 0], [0, 0], [0, 0], [2, 2]])
            total = sum(padded[..., i:i + x.shape[-1]] for i in range(5))
            return x * tf.pow(2.0 + 1e-4 * total, -0.75)

        return lrn
    import jax
    import jax.numpy as jnp

    @jax.jit
    def lrn(x):
        padded = jnp.pad(jnp.square(x), [(0, 0), (0, 0), (0, 0), (2, 2)])
        total = sum(padded[..., i:i + x.shape[-1]] for i in range(5))
        return x * jnp.power(2.0 + 1e-4 * total, -0.75)

    return lrn


def measure(what):
    import keras
    import numpy as np

    import keras_lrn

    backend = os.environ["KERAS_BACKEND"]
    rng = np.random.default_rng(0)
    if what == "configs":
        x = rng.uniform(0, 10, (2, 8, 8, 16)).astype(np.float32)
        np.asarray(keras_lrn.LRN()(x))
        before = resident_mb()
        for i in range(LAYERS):
            layer = keras_lrn.LRN(alpha=1e-4 * (1 + i / LAYERS),
                                  bias=1.0 + i / LAYERS)
            np.asarray(layer(x))
        from keras_lrn import _compilation

        cache = {"jax": _compilation._jax_functions,
                 "torch": _compilation._torch_eager_passes}.get(
                     backend, _compilation._xla_passes)
        structures = cache.cache_info().currsize
        print(f"{backend}: {LAYERS} layers with distinct alpha and bias: "
              f"+{resident_mb() - before:.1f} MB RSS, {structures} compiled "
              "structure(s)")
        return
    candidates = {"keras_lrn.LRN()": keras_lrn.LRN(),
                  "plain compiled formula": plain_compiled_formula(backend)}
    function = candidates[what]
    # inputs already on the backend, made before measuring: what the
    # candidates do with a new shape is what is measured
    inputs = [keras.ops.convert_to_tensor(
        rng.uniform(0, 10, (2, s, s, 16)).astype(np.float32))
        for s in range(7, 7 + WARMUP_SHAPES + SHAPES)]
    for x in inputs[:WARMUP_SHAPES]:
        np.asarray(function(x))
    before = resident_mb()
    for x in inputs[WARMUP_SHAPES:]:
        np.asarray(function(x))
    growth = (resident_mb() - before) / SHAPES
    print(f"{backend}: {what}: +{growth:.3f} MB RSS per new shape")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="tensorflow",
                        choices=["tensorflow", "jax"])
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        measure(arguments.measure)
        return
    env = dict(os.environ, KERAS_BACKEND=arguments.backend,
               TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run([sys.executable, __file__, "--measure", "configs"],
                   env=env, check=True)
    # the shape slopes, alternating, each in PROCESSES fresh processes: one
    # process's slope varies by a few hundredths of a MB
    growths = {"keras_lrn.LRN()": [], "plain compiled formula": []}
    for _ in range(PROCESSES):
        for what, values in growths.items():
            line = subprocess.run(
                [sys.executable, __file__, "--measure", what], env=env,
                check=True, capture_output=True, text=True).stdout.strip()
            print(line)
            values.append(float(line.rsplit("+", 1)[1].split()[0]))
    ours, plain = (statistics.median(v) for v in growths.values())
    print(f"{arguments.backend}: median of {PROCESSES} processes: "
          f"keras_lrn.LRN() +{ours:.3f}, plain compiled formula "
          f"+{plain:.3f} MB per new shape; ratio {ours / plain:.2f}")


if __name__ == "__main__":
    main()
