"""Learned LRN: what learning the parameters costs, and which exponential
window sum is faster.

Forward + backward (gradients with respect to the input and every learned
parameter) under XLA: `tf.function(jit_compile=True)` on TensorFlow,
`jax.jit` on JAX. Prints
- the time of a learnable box-window layer (alpha, beta, bias learned)
  against the fixed layer, and their ratio (the target, issue 25: at most
  1.6x on TensorFlow), timed among all the cases and again with the two
  alone, alternated;
- the exponential window by matrix product and by doubling scans at
  C = 96 (AlexNet's conv1 output, 55x55), C = 384 (conv3, 13x13) and
  C = 1536 (7x7), to place the crossover.

The machine may be shared: the cases are interleaved round by round and the
median of the rounds is reported.

    KERAS_BACKEND=tensorflow python benchmarks/learned_bench.py
    KERAS_BACKEND=jax python benchmarks/learned_bench.py
"""

import argparse
import statistics
import time

import keras
import numpy as np

import keras_lrn
from keras_lrn import _arguments
from keras_lrn import _dispatch
from keras_lrn import _windows


def tensorflow_step(function, arguments):
    """Forward + backward of sum(function(*arguments) * upstream), with
    respect to every argument, XLA-compiled."""
    import tensorflow as tf

    arguments = [tf.constant(a) for a in arguments]

    @tf.function(jit_compile=True)
    def step(upstream, *arguments):
        with tf.GradientTape() as tape:
            tape.watch(arguments)
            y = function(*arguments)
        return tape.gradient(y, arguments, output_gradients=upstream)

    def run(upstream):
        return [g.numpy() for g in step(upstream, *arguments)]

    return run


def jax_step(function, arguments):
    import jax
    import jax.numpy as jnp

    arguments = [jnp.asarray(a) for a in arguments]

    def loss(upstream, *arguments):
        return jnp.sum(function(*arguments) * upstream)

    step = jax.jit(jax.grad(loss, argnums=tuple(range(1, 1 + len(arguments)))))

    def run(upstream):
        return jax.block_until_ready(step(upstream, *arguments))

    return run


def make_step(function, arguments):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return tensorflow_step(function, arguments)
    if backend == "jax":
        return jax_step(function, arguments)
    raise SystemExit(f"no XLA benchmark on backend {backend!r}")


def learned_layer(layer, shape):
    """A learnable layer's `call` as a function of (x, *learned weights),
    so that both backends differentiate it alike; and the weights' values."""
    layer.build(shape)

    def function(x, *weights):
        return layer.stateless_call(list(weights), [], x)[0]

    initial = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
    return function, initial


def cases(batch):
    rng = np.random.default_rng(0)
    conv1 = (batch, 55, 55, 96)
    x1 = rng.uniform(0, 10, conv1).astype("float32")

    def fixed(x):
        return keras_lrn.ops.local_response_normalization(x)

    learned, initial = learned_layer(
        keras_lrn.LocalResponseNormalization(learnable=True), conv1)
    yield "box fixed C=96", fixed, [x1], conv1
    yield "box learned C=96", learned, [x1] + initial, conv1
    for channels, spatial in ((96, 55), (384, 13), (1536, 7)):
        shape = (batch, spatial, spatial, channels)
        x = rng.uniform(0, 10, shape).astype("float32")
        for method in ("matrix", "scan"):
            window = _windows.ExponentialWindow(3, channels, method)

            def exponential(x, alpha, beta, bias, scale, window=window):
                parameters = [keras.ops.exp(alpha), keras.ops.exp(beta),
                              keras.ops.exp(bias), keras.ops.exp(scale)]
                context = _dispatch.current_context(x, *parameters)
                kernel = _dispatch.choose_kernel(
                    context, tuple(x.shape), x.dtype, window, "auto",
                    "across_channels", 5, parameters[1], parameters[2],
                    "channels_last", _arguments.PARAMETERS)
                return _dispatch.kernel(kernel)(
                    x, window, *parameters[:3], parameters[3],
                    _arguments.PARAMETERS)

            params = [np.float32(np.log(v)) for v in (1e-4, 0.75, 2.0, 3.0)]
            yield (f"exponential {method} C={channels}", exponential,
                   [x] + params, shape)


def interleaved(steps, names, rounds, iterations):
    """The median time per call (ms) of each of `names`, timed round by
    round in turn. Among all cases a case starts where a different program
    left the caches; the box layers alternated alone start where the
    other, of the same input, left them."""
    times = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            run, upstream = steps[name]
            start = time.perf_counter()
            for _ in range(iterations):
                run(upstream)
            times[name].append(
                (time.perf_counter() - start) / iterations * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()

    steps = {}
    for name, function, arguments, shape in cases(args.batch):
        # a backend tensor, made once: no call times a copy from NumPy
        upstream = keras.ops.convert_to_tensor(
            np.random.default_rng(1).normal(size=shape).astype("float32"))
        run = make_step(function, arguments)
        run(upstream)  # compile
        steps[name] = (run, upstream)
    median = interleaved(steps, list(steps), args.rounds, args.iterations)
    box = ["box fixed C=96", "box learned C=96"]
    alone = interleaved(steps, box, args.rounds, args.iterations)
    print(f"backend {keras.backend.backend()}, XLA, forward+backward, batch "
          f"{args.batch}, median of {args.rounds} interleaved rounds x "
          f"{args.iterations} calls (ms)")
    for name, value in median.items():
        print(f"  {name:28s} {value:9.2f}")
    for name, value in alone.items():
        print(f"  {name + ', the two alone':28s} {value:9.2f}")
    for label, times in (("among all cases", median),
                         ("the two alone", alone)):
        print(f"  ratio learned/fixed box, {label} (target <= 1.6 on "
              f"TensorFlow): {times[box[1]] / times[box[0]]:.2f}")
    for channels in (96, 384, 1536):
        ratio = (median[f"exponential scan C={channels}"]
                 / median[f"exponential matrix C={channels}"])
        print(f"  ratio scan/matrix C={channels}: {ratio:.2f}")


if __name__ == "__main__":
    main()
