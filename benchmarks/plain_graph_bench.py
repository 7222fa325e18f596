"""The default LRN in a plain `tf.function` against tf.nn and the XLA floor.

A plain `tf.function` (no `jit_compile`) is how `model.predict` runs with
`jit_compile=False` and how SavedModel signatures are served. On AlexNet's
conv1 output (32x55x55x96 float32) this times, side by side in one process
and interleaved, the forward of
- `keras_lrn.LRN()` (implementation "auto"),
- `tf.nn.local_response_normalization` with the same hyperparameters,
- TensorFlow's XLA-compiled `x * 2.0` on the same tensor (the floor: one
  read and one write of the tensor),
and prints medians and the ratios issue 11 asks for.

    KERAS_BACKEND=tensorflow python benchmarks/plain_graph_bench.py
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--shape", type=int, nargs=4, default=(32, 55, 55, 96))
    arguments = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    import keras_lrn

    x = tf.constant(np.random.default_rng(0).uniform(
        0, 10, arguments.shape).astype(np.float32))
    layer = keras_lrn.LRN()  # AlexNet's: size 5, alpha 1e-4, beta 0.75, k 2
    candidates = {
        "default LRN() in tf.function": tf.function(lambda t: layer(t)),
        "tf.nn.local_response_normalization in tf.function": tf.function(
            lambda t: tf.nn.local_response_normalization(
                t, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)),
        "floor: XLA-compiled x * 2.0": tf.function(
            lambda t: t * 2.0, jit_compile=True),
    }
    for function in candidates.values():  # trace and compile
        for _ in range(3):
            function(x).numpy()
    times = {name: [] for name in candidates}
    for _ in range(arguments.repeats):
        for name, function in candidates.items():
            start = time.perf_counter()
            function(x).numpy()
            times[name].append(1e3 * (time.perf_counter() - start))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:55s} median {median:7.2f} ms  "
              f"min {min(times[name]):7.2f}")
    ours, native, floor = medians.values()
    print(f"tf.nn / default: {native / ours:.2f}x (target >= 1.7x)")
    print(f"default / floor: {ours / floor:.2f}x (target <= 2.2x)")


if __name__ == "__main__":
    main()
