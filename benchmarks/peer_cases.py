"""The JAX cases (our layer eagerly and under `jax.jit`, on CPU or GPU) and
PyTorch's `torch.nn.functional.local_response_norm` (eager, and
`torch.compile`d on CUDA or on request), beside the floors.

On the JAX path TensorFlow is never imported. Importing this module imports
nothing beyond NumPy and the timing module.
"""

import os
import sys

import numpy as np

from benchmarks import timing
from benchmarks.timing import MODES, SHORT


def add_jax_cases(bench, torch_cases=None):
    """Adds every JAX candidate of `bench.setup`; `torch_cases(bench, label,
    shape, x, g)` adds PyTorch's, if given."""
    import jax
    import jax.numpy as jnp

    s = bench.setup
    platform_name = "gpu" if s.device == "gpu" else "cpu"
    try:
        device = jax.devices(platform_name)[0]
    except RuntimeError:
        sys.exit(f"lrn_bench: --device {s.device} but JAX has no "
                 f"{platform_name} device")

    def contexts(f, g, eager_fwd=True):
        def loss(v):
            return jnp.sum(f(v).astype(jnp.float32) * g)
        out = [("eager", "fwd", f)] if eager_fwd else []
        return out + [("jit", "fwd", jax.jit(f)),
                      ("jit", "fwd+bwd", jax.jit(jax.grad(loss)))]

    def add(f, x, **kw):
        bench.add(lambda f=f, x=x: f(x), sync=jax.block_until_ready, **kw)

    def add_floors(shape, x, dtype="float32"):
        if s.device == "cpu":
            x_np = np.asarray(x)
            bench.add(lambda a=x_np: a.copy(), impl="numpy copy",
                      shape=shape, dtype=dtype, mode="-", size=0,
                      ctx="numpy", pas="copy")
        add(jax.jit(lambda v: v * 2.0), x, impl="x*2", shape=shape,
            dtype=dtype, mode="-", size=0, ctx="jit", pas="elementwise")

    for label, shape in s.shapes.items():
        x_np, g_np = timing.make_data(shape)
        xj = jax.device_put(x_np, device)
        gj = jax.device_put(g_np, device)
        add_floors(shape, xj)
        for mode in MODES:
            layer = timing.our_layer(mode, 5)
            layer(xj[:1])
            for ctx, pas, f in contexts(layer, gj):
                add(f, xj, impl="ours", shape=shape, mode=SHORT[mode],
                    size=5, ctx=ctx, pas=pas)
        if shape == s.main:
            for size in s.window_sizes:
                if size == 5:
                    continue
                for mode in MODES:
                    layer = timing.our_layer(mode, size)
                    layer(xj[:1])
                    add(jax.jit(layer), xj, impl="ours", shape=shape,
                        mode=SHORT[mode], size=size, ctx="jit", pas="fwd")
            for dtype in s.half_dtypes:
                xh = xj.astype(dtype)
                add_floors(shape, xh, dtype)
                for mode in MODES:
                    layer = timing.our_layer(mode, 5, dtype=dtype)
                    layer(xh[:1])
                    for ctx, pas, f in contexts(layer, gj, eager_fwd=False):
                        add(f, xh, impl="ours", shape=shape, dtype=dtype,
                            mode=SHORT[mode], size=5, ctx=ctx, pas=pas)
        if torch_cases is not None:
            torch_cases(bench, label, shape, x_np, g_np)


def jax_agreement(bench, torch_forward=None, images=8):
    """[(name, error)] on the first `images` images of the main shape: ours
    (jit) and torch against the float64 formula; half precision in units in
    the last place (a single rounding is at most 0.5)."""
    import jax

    s = bench.setup
    x_np, _ = timing.make_data(s.main)
    x_np = x_np[:images]
    lines = []
    for mode in MODES:
        ref = timing.numpy_reference(x_np, 5, mode)
        ours = np.asarray(jax.jit(timing.our_layer(mode, 5))(x_np))
        lines.append((f"ours {SHORT[mode]} (jit) float32 vs float64 numpy, "
                      "max rel err", timing.rel_err(ours, ref)))
        for dtype in s.half_dtypes:
            xh = jax.numpy.asarray(x_np).astype(dtype)
            ref = timing.numpy_reference(np.asarray(xh, np.float64), 5, mode)
            yh = jax.jit(timing.our_layer(mode, 5, dtype=dtype))(xh)
            worst, share = timing.ulp_error(np.asarray(yh), ref,
                                            np.dtype(yh.dtype))
            lines.append((f"ours {SHORT[mode]} (jit) {dtype} vs float64 "
                          "numpy, max ulps", worst))
            lines.append((f"ours {SHORT[mode]} (jit) {dtype}, share of "
                          "elements > 1 ulp off", share))
    if torch_forward is not None:
        ref = timing.numpy_reference(x_np, 5)
        lines.append(("torch vs float64 numpy, max rel err",
                      timing.rel_err(torch_forward(x_np), ref)))
    return lines


# ------------------------------- PyTorch ----------------------------------

def torch_module():
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def torch_forward(x_nhwc):
    """PyTorch's LRN of NHWC `x` (on the CPU), NHWC out."""
    torch = torch_module()
    xt = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
    with torch.no_grad():
        y = torch.nn.functional.local_response_norm(
            xt, **timing.torch_params(5))
    return y.numpy().transpose(0, 2, 3, 1)


def add_torch_cases(bench, label, shape, x_np, g_np):
    """torch.nn.functional.local_response_norm on the NCHW transpose of the
    same tensor: eager, and torch.compile'd on CUDA or with
    `setup.torch_compile`."""
    torch = torch_module()
    F = torch.nn.functional
    s = bench.setup
    cuda = s.device == "gpu"
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
    sizes = (5,) + (tuple(v for v in s.window_sizes if v != 5)
                    if shape == s.main else ())
    for size in sizes:
        p = timing.torch_params(size)

        def fwd(v, p=p):
            return F.local_response_norm(v, **p)

        def fwd_bwd(v, p=p):
            y = F.local_response_norm(v, **p)
            return torch.autograd.grad((y * g).sum(), v)[0]

        variants = [("eager", fwd, fwd_bwd)]
        if (cuda or s.torch_compile) and size == 5:
            variants.append(("torch.compile", torch.compile(fwd),
                             torch.compile(fwd_bwd)))
        for ctx, f, fb in variants:
            def run_fwd(f=f):
                with torch.no_grad():
                    return f(x)
            bench.add(run_fwd, impl="torch", shape=shape, size=size, ctx=ctx,
                      pas="fwd", sync=sync, note="NCHW")
            if size == 5:
                bench.add(lambda fb=fb: fb(xg), impl="torch", shape=shape,
                          size=size, ctx=ctx, pas="fwd+bwd", sync=sync,
                          note="NCHW")
