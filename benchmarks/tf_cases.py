"""The TensorFlow cases: our layer beside `tf.nn.local_response_normalization`
eagerly, in a plain `tf.function` and in `tf.function(jit_compile=True)`,
with the numpy copy and TF's own XLA-compiled `x * 2.0` as floors.

In a plain `tf.function` the layer is timed with `implementation="auto"`
(the default, `ours`) and `implementation="portable"` (`ours[portable]`),
so the rows read the same whichever path "auto" picks there. Importing this
module imports nothing beyond the timing module; TensorFlow, Keras and
keras_lrn are imported by the functions.
"""

import sys

from benchmarks import timing
from benchmarks.timing import ALPHA, BETA, BIAS, MODES, SHORT


def xla_floor(tf):
    """TF's own XLA-compiled elementwise op: the framework's floor."""
    return tf.function(lambda x: x * 2.0, jit_compile=True)


def add_cases(bench, torch_cases=None):
    """Adds every TensorFlow candidate of `bench.setup` to `bench`;
    `torch_cases(bench, label, shape, x, g)` adds PyTorch's, if given."""
    import tensorflow as tf

    s = bench.setup
    tf.get_logger().setLevel("ERROR")  # retracing notes: expected here
    gpu = s.device == "gpu"
    if gpu and not tf.config.list_logical_devices("GPU"):
        sys.exit("lrn_bench: --device gpu but TensorFlow sees no GPU")
    sync_devices = getattr(getattr(tf.test, "experimental", None),
                           "sync_devices", None)
    tf_sync = None  # CPU kernels have finished when the call returns
    if gpu and sync_devices is not None:
        def tf_sync(out):
            sync_devices()
            return out

    def fwd_bwd(f, g):
        def h(v):
            with tf.GradientTape() as tape:
                tape.watch(v)
                loss = tf.reduce_sum(tf.cast(f(v), tf.float32) * g)
            return tape.gradient(loss, v)
        return h

    def contexts(f, g, eager_fwd=True):
        """(ctx, pass, callable taking x) for the usual contexts."""
        out = [("eager", "fwd", f)] if eager_fwd else []
        return out + [
            ("tf.function", "fwd", tf.function(f)),
            ("XLA", "fwd", tf.function(f, jit_compile=True)),
            ("tf.function", "fwd+bwd", tf.function(fwd_bwd(f, g))),
            ("XLA", "fwd+bwd", tf.function(fwd_bwd(f, g), jit_compile=True)),
        ]

    def native(size):
        return lambda v: tf.nn.local_response_normalization(
            v, depth_radius=(size - 1) // 2, bias=BIAS, alpha=ALPHA,
            beta=BETA)

    def add(f, x, **kw):
        bench.add(lambda f=f, x=x: f(x), sync=tf_sync, **kw)

    def add_layer(impl, mode, size, x, g, implementation="auto",
                  dtype=None, keep=lambda ctx, pas: True, eager_fwd=True):
        layer = timing.our_layer(mode, size, implementation, dtype)
        layer(x[:1])  # build
        for ctx, pas, f in contexts(layer, g, eager_fwd):
            if keep(ctx, pas):
                add(f, x, impl=impl, shape=x.shape, dtype=x.dtype.name,
                    mode=SHORT[mode], size=size, ctx=ctx, pas=pas)

    def add_floors(shape, x_np, x_tf, dtype="float32"):
        bench.add(lambda a=x_np: a.copy(), impl="numpy copy", shape=shape,
                  dtype=dtype, mode="-", size=0, ctx="numpy", pas="copy")
        add(xla_floor(tf), x_tf, impl="x*2", shape=shape, dtype=dtype,
            mode="-", size=0, ctx="XLA", pas="elementwise")

    plain = (lambda ctx, pas: ctx == "tf.function")
    forward = (lambda ctx, pas: pas == "fwd")
    with tf.device("/GPU:0" if gpu else "/CPU:0"):
        for label, shape in s.shapes.items():
            main = shape == s.main
            x_np, g_np = timing.make_data(shape)
            xt, gt = tf.constant(x_np), tf.constant(g_np)
            add_floors(shape, x_np, xt)
            for mode in MODES:
                add_layer("ours", mode, 5, xt, gt)
            # the plain-graph rows of the portable path (the default there
            # once "auto" stops emitting the native op in plain graphs)
            add_layer("ours[portable]", "across_channels", 5, xt, gt,
                      "portable", keep=plain, eager_fwd=False)
            for ctx, pas, f in contexts(native(5), gt):
                add(f, xt, impl="tf.nn (native)", shape=shape, size=5,
                    ctx=ctx, pas=pas)
            if main:
                # implementation="native": the tf.nn forward with our own
                # (XLA-compiled) backward
                add_layer("ours[native]", "across_channels", 5, xt, gt,
                          "native", keep=plain, eager_fwd=False)
                for size in s.window_sizes:
                    if size == 5:
                        continue
                    for mode in MODES:
                        add_layer("ours", mode, size, xt, gt, keep=forward,
                                  eager_fwd=False)
                    for ctx, pas, f in contexts(native(size), gt,
                                                eager_fwd=False):
                        if pas == "fwd":
                            add(f, xt, impl="tf.nn (native)", shape=shape,
                                size=size, ctx=ctx, pas=pas)
                for dtype in s.half_dtypes:
                    xh = tf.cast(xt, dtype)
                    add_floors(shape, xh.numpy(), xh, dtype)
                    for mode in MODES:
                        add_layer("ours", mode, 5, xh, gt, dtype=dtype,
                                  eager_fwd=False)
            if torch_cases is not None:
                torch_cases(bench, label, shape, x_np, g_np)


def agreement(bench, torch_forward=None):
    """[(name, max rel err)]: ours and torch against tf.nn on the main
    shape."""
    import keras
    import tensorflow as tf

    x_np, _ = timing.make_data(bench.setup.main)
    ref = tf.nn.local_response_normalization(
        tf.constant(x_np), 2, BIAS, ALPHA, BETA).numpy()
    ours = keras.ops.convert_to_numpy(
        timing.our_layer("across_channels", 5)(x_np))
    lines = [("ours across vs tf.nn", timing.rel_err(ours, ref)),
             ("ours across vs float64 numpy",
              timing.rel_err(ours, timing.numpy_reference(x_np, 5)))]
    if torch_forward is not None:
        lines.append(("torch vs tf.nn",
                      timing.rel_err(torch_forward(x_np), ref)))
    return lines


def plain_graph_lines(bench):
    """The plain-graph comparison, main shape, across, size 5, forward:
    ours ("auto" and "portable") vs tf.nn and vs TF's XLA `x * 2.0`."""
    s = bench.setup

    def g(**kw):
        return bench.find(shape=s.main, dtype="float32", **kw)

    nat = g(impl="tf.nn (native)", size=5, ctx="tf.function", pas="fwd")
    floor = g(impl="x*2", ctx="XLA")
    out = []
    for impl, what in (("ours", 'LRN() (implementation="auto")'),
                       ("ours[portable]", 'LRN(implementation="portable")')):
        c = g(impl=impl, mode="across", size=5, ctx="tf.function", pas="fwd")
        if c is None:
            continue
        parts = []
        if nat:
            parts.append(f"ours / tf.nn = {c.median / nat.median:.2f} "
                         f"(tf.nn {nat.median:.2f} ms; ours "
                         f"{nat.median / c.median:.2f}x as fast)")
        if floor:
            parts.append(f"ours / XLA x * 2.0 = {c.median / floor.median:.2f}"
                         f" (x * 2.0 {floor.median:.2f} ms)")
        out.append(f"- plain tf.function, {what}: {c.median:.2f} ms: "
                   + "; ".join(parts))
    return out
