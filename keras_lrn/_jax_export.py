"""One ONNX `LRN` node for LRN exported from the JAX backend.

Keras exports JAX models to ONNX with jax2onnx (`model.export(path,
format="onnx")`), which converts the jaxpr primitive by primitive: LRN's
formula becomes its squares, slices, sums and powers. While jax2onnx
converts (`converting()`), LRN calls that ONNX's `LRN` operator computes
(`onnx_lrn_size`) bind the primitive `keras_lrn_lrn` instead, which a
jax2onnx plugin registered here writes as one `LRN` node (between two
`Transpose` nodes for channels_last input). Outside a conversion nothing
here runs; the primitive also evaluates and compiles as the formula, so a
function traced for export still runs in JAX.
"""

import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.interpreters import mlir


def converting():
    """Whether jax2onnx is converting a function now.

    jax2onnx applies its plugins' patches for the time of a conversion
    (`apply_monkey_patches`); that is the one state it exposes.
    """
    system = sys.modules.get("jax2onnx.plugins.plugin_system")
    return bool(system is not None and getattr(system, "_PATCH_STATE", None))


def onnx_lrn_size(shape, dtype, axes, before, after):
    """The `size` of ONNX's `LRN` that computes this window, or None.

    The operator sums across the channels of N x C x ... input; it is used
    for 4-D float32 input across channels with an odd window. ONNX defines
    even windows (the extra element after the centre) too, but onnxruntime's
    kernel refuses them (`size_ % 2 == 1`), so those stay the formula.
    """
    rank = len(shape)
    if (rank != 4 or np.dtype(dtype) != np.float32 or len(axes) != 1
            or axes[0] % rank not in (1, 3) or before != after):
        return None
    return before + after + 1


def _formula(x, *, size, alpha, beta, bias, channels_last):
    axis = 3 if channels_last else 1
    half = size // 2
    pad = [(0, 0)] * 4
    pad[axis] = (half, half)
    padded = jnp.pad(jnp.square(x), pad)
    total = sum(jax.lax.slice_in_dim(padded, i, i + x.shape[axis], axis=axis)
                for i in range(size))
    return x * (bias + alpha * total) ** -beta


@functools.cache
def _primitive():
    from jax.extend.core import Primitive

    primitive = Primitive("keras_lrn_lrn")
    primitive.def_impl(_formula)
    primitive.def_abstract_eval(
        lambda x, **_: jax.core.ShapedArray(x.shape, x.dtype))
    mlir.register_lowering(
        primitive, mlir.lower_fun(_formula, multiple_results=False))
    _register_plugin(primitive)
    return primitive


def _register_plugin(primitive):
    import onnx_ir as ir
    from jax2onnx.plugins._ir_shapes import _stamp_type_and_shape
    from jax2onnx.plugins.plugin_system import (
        PrimitiveLeafPlugin,
        register_primitive,
    )

    @register_primitive(jaxpr_primitive=primitive.name, since="keras_lrn",
                        context="primitives.keras_lrn", component="lrn",
                        onnx=[{"component": "LRN"}], testcases=[])
    class LRNPlugin(PrimitiveLeafPlugin):
        def lower(self, ctx, eqn):
            (x_var,) = eqn.invars
            (y_var,) = eqn.outvars
            params = eqn.params
            shape = tuple(x_var.aval.shape)
            x = ctx.get_value_for_var(x_var, name_hint=ctx.fresh_name("lrn_in"))
            out_spec = ctx.get_value_for_var(
                y_var, name_hint=ctx.fresh_name("lrn_out"))
            builder = ctx.builder
            channels_last = params["channels_last"]
            nchw = x
            if channels_last:
                nchw = builder.Transpose(
                    x, perm=[0, 3, 1, 2],
                    _outputs=[ctx.fresh_name("lrn_to_nchw")])
                nchw.type = ir.TensorType(ir.DataType.FLOAT)
                _stamp_type_and_shape(
                    nchw, (shape[0], shape[3], shape[1], shape[2]))
            name = (ctx.fresh_name("lrn_nchw") if channels_last else
                    getattr(out_spec, "name", None) or ctx.fresh_name("lrn"))
            y = builder.LRN(
                nchw, size=params["size"],
                alpha=float(params["alpha"] * params["size"]),
                beta=float(params["beta"]), bias=float(params["bias"]),
                _outputs=[name])
            y.type = ir.TensorType(ir.DataType.FLOAT)
            if channels_last:
                _stamp_type_and_shape(
                    y, (shape[0], shape[3], shape[1], shape[2]))
                y = builder.Transpose(
                    y, perm=[0, 2, 3, 1],
                    _outputs=[getattr(out_spec, "name", None)
                              or ctx.fresh_name("lrn")])
                y.type = ir.TensorType(ir.DataType.FLOAT)
            _stamp_type_and_shape(y, shape)
            ctx.bind_value_for_var(y_var, y)

    return LRNPlugin


def lrn(x, size, alpha, beta, bias, channels_last):
    """LRN as one `keras_lrn_lrn` primitive (ONNX's `LRN` once exported):
    across the channels of 4-D float32 `x`, odd `size`, alpha per term."""
    return _primitive().bind(x, size=size, alpha=float(alpha),
                             beta=float(beta), bias=float(bias),
                             channels_last=bool(channels_last))
