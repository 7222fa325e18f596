"""AlexNet train step with LRN vs no normalization vs BatchNorm, Keras on JAX.

Run from the repository root (benchmarks/gpu_check.sh runs it on the lent
GPU machine):

    KERAS_BACKEND=jax python -m benchmarks.gpu_train_step              # GPU
    KERAS_BACKEND=jax python -m benchmarks.gpu_train_step --device cpu \
        --batch 2 --image-size 67 --classes 10 --steps 2 --reps 2

Builds `keras_lrn.applications.AlexNet(normalization=...)` for each
normalization and dtype policy (float32, mixed_bfloat16) and times one
training step: forward, loss, backward and an SGD-with-momentum update,
written the Keras-on-JAX way (`model.stateless_call` under `jax.value_and_grad`
and `optimizer.stateless_apply`, the whole step in one `jax.jit` with the
state donated). Each repetition runs `--steps` steps of every configuration
back to back, configurations interleaved round-robin; reported are the
median and min of the per-step means, and the first call (compilation
included) separately.
"""

import argparse
import os
import statistics
import sys
import time

if __package__ in (None, ""):  # run as a script: make `benchmarks` a package
    sys.path.insert(0, os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))

NORMALIZATIONS = ("lrn", "none", "batchnorm")
POLICIES = ("float32", "mixed_bfloat16")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--image-size", type=int, default=227)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=20,
                   help="back-to-back steps per configuration and "
                        "repetition (default 20)")
    p.add_argument("--reps", type=int, default=7,
                   help="interleaved repetitions (default 7)")
    p.add_argument("--policies", nargs="+", default=list(POLICIES),
                   choices=POLICIES)
    p.add_argument("--output", default=None,
                   help="also write the markdown table to this file")
    return p.parse_args(argv)


def make_step(model, optimizer):
    """One jitted training step on (trainable, non-trainable, optimizer)
    state, which it donates."""
    import jax
    import keras

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_and_state(trainable, non_trainable, x, y):
        logits, non_trainable = model.stateless_call(
            trainable, non_trainable, x, training=True)
        return loss_fn(y, keras.ops.cast(logits, "float32")), non_trainable

    grad_fn = jax.value_and_grad(loss_and_state, has_aux=True)

    def step(state, x, y):
        trainable, non_trainable, opt_vars = state
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, x, y)
        trainable, opt_vars = optimizer.stateless_apply(
            opt_vars, grads, trainable)
        return loss, (trainable, non_trainable, opt_vars)

    return jax.jit(step, donate_argnums=0)


class Config:
    """One model (normalization, dtype policy), its state and its step."""

    def __init__(self, normalization, policy, args):
        import keras

        from keras_lrn.applications import AlexNet

        self.normalization, self.policy = normalization, policy
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            model = AlexNet(
                input_shape=(args.image_size, args.image_size, 3),
                classes=args.classes, classifier_activation=None,
                normalization=normalization)
        finally:
            keras.config.set_dtype_policy(previous)
        optimizer = keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9)
        optimizer.build(model.trainable_variables)
        self.params = model.count_params()
        self.state = ([v.value for v in model.trainable_variables],
                      [v.value for v in model.non_trainable_variables],
                      [v.value for v in optimizer.variables])
        self.step = make_step(model, optimizer)
        self.first_s = None
        self.times = []
        self.loss = None

    def run(self, x, y, steps):
        """Mean ms per step of `steps` back-to-back steps."""
        import jax

        t0 = time.perf_counter()
        for _ in range(steps):
            self.loss, self.state = self.step(self.state, x, y)
        jax.block_until_ready(self.loss)
        return (time.perf_counter() - t0) * 1e3 / steps


def table(configs):
    lines = ["| normalization | policy | median ms/step | min ms/step | "
             "first step s | x none (same policy) | final loss |",
             "|---|---|---|---|---|---|---|"]
    for c in configs:
        none = next(o for o in configs if o.policy == c.policy
                    and o.normalization == "none")
        med = statistics.median(c.times)
        rel = med / statistics.median(none.times)
        lines.append(f"| {c.normalization} | {c.policy} | {med:.2f} | "
                     f"{min(c.times):.2f} | {c.first_s:.1f} | {rel:.3f} | "
                     f"{float(c.loss):.3f} |")
    return lines


def main(argv=None):
    args = parse_args(argv)
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        if args.device == "cpu":
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import keras
    import numpy as np

    if keras.backend.backend() != "jax":
        sys.exit("gpu_train_step: needs KERAS_BACKEND=jax")
    try:
        device = jax.devices(args.device)[0]
    except RuntimeError:
        sys.exit(f"gpu_train_step: JAX has no {args.device} device")
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.uniform(0, 1, (args.batch, args.image_size,
                                          args.image_size, 3)).astype(
        "float32"), device)
    y = jax.device_put(rng.integers(0, args.classes, args.batch), device)
    configs = []
    with jax.default_device(device):
        for policy in args.policies:
            for normalization in NORMALIZATIONS:
                c = Config(normalization, policy, args)
                t0 = time.perf_counter()
                c.run(x, y, 1)
                c.first_s = time.perf_counter() - t0
                configs.append(c)
                print(f"# {normalization} {policy}: {c.params:,} params, "
                      f"first step {c.first_s:.1f} s", file=sys.stderr,
                      flush=True)
        for c in configs:  # warm-up
            c.run(x, y, args.steps)
        for _ in range(args.reps):
            for c in configs:
                c.times.append(c.run(x, y, args.steps))
    lines = [f"AlexNet train step (Keras {keras.__version__} on JAX "
             f"{jax.__version__}, {device.device_kind}), batch {args.batch}, "
             f"{args.image_size}x{args.image_size}x3, {args.classes} "
             f"classes, SGD momentum 0.9; {args.reps} interleaved "
             f"repetitions of {args.steps} back-to-back steps:", ""]
    lines += table(configs)
    for policy in args.policies:
        by = {c.normalization: statistics.median(c.times) for c in configs
              if c.policy == policy}
        lines.append("")
        lines.append(f"- {policy}: LRN adds "
                     f"{100 * (by['lrn'] / by['none'] - 1):+.1f}% to the "
                     f"step without normalization (target: at most +5%); "
                     "BatchNorm "
                     f"{100 * (by['batchnorm'] / by['none'] - 1):+.1f}%")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    return text


if __name__ == "__main__":
    main()
