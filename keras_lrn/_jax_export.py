"""One ONNX `LRN` node for LRN exported from the JAX backend.

Keras exports JAX models to ONNX with jax2onnx (`model.export(path,
format="onnx")`), which converts the jaxpr primitive by primitive: LRN's
formula becomes its squares, slices, sums and powers. While jax2onnx
converts, the dispatch (`keras_lrn._dispatch`) sends LRN calls that ONNX's
`LRN` operator computes to `onnx_node`, which binds the primitive
`keras_lrn_lrn`; a jax2onnx plugin registered here writes it as one `LRN`
node (between two `Transpose` nodes for channels_last input), its
attributes from `conventions.CONVENTIONS["onnx"]`. Outside a conversion
nothing here runs; the primitive also evaluates and compiles as the formula
(its power from `keras_lrn._formula.beta_power`), so a function traced for
export still runs in JAX.
"""

import functools

import jax
import jax.numpy as jnp
from jax.interpreters import mlir

from keras_lrn import _foreign
from keras_lrn import _formula
from keras_lrn import _windows
from keras_lrn import conventions

__all__ = ["onnx_node"]

# `jax.lax`'s functions, not `jax.numpy`'s: jax2onnx replaces `jax.numpy`'s
# while it converts, and this module is first imported during a conversion
# (the dispatch sends LRN here then), so captured `jax.numpy` functions
# would be jax2onnx's, which no longer evaluate once it is done.
JAX_LAX = _formula.Primitives(
    sqrt=jax.lax.sqrt, multiply=jax.lax.mul, power=jax.lax.pow,
    exp=jax.lax.exp, log=jax.lax.log,
    ones_like=lambda value: jax.lax.full_like(value, 1))


def _plain_formula(x, *, size, alpha, beta, bias, channels_last):
    half = size // 2
    window = _windows.BoxWindow((3 if channels_last else 1,), half, half)
    t = bias + alpha * window.sum(jnp.square(x))
    return x / _formula.beta_power(t, _formula.beta_path_of(beta), beta,
                                   JAX_LAX)


@functools.cache
def _primitive():
    from jax.extend.core import Primitive

    primitive = Primitive("keras_lrn_lrn")
    primitive.def_impl(_plain_formula)
    primitive.def_abstract_eval(
        lambda x, **_: jax.core.ShapedArray(x.shape, x.dtype))
    mlir.register_lowering(
        primitive, mlir.lower_fun(_plain_formula, multiple_results=False))
    _register_plugin(primitive)
    return primitive


def _register_plugin(primitive):
    import onnx_ir as ir
    from jax2onnx.plugins.plugin_system import (
        PrimitiveLeafPlugin,
        register_primitive,
    )

    stamp_type_and_shape = _foreign.jax2onnx_shape_stamper()

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
                stamp_type_and_shape(
                    nchw, (shape[0], shape[3], shape[1], shape[2]))
            name = (ctx.fresh_name("lrn_nchw") if channels_last else
                    getattr(out_spec, "name", None) or ctx.fresh_name("lrn"))
            attributes = conventions.from_canonical(
                conventions.CONVENTIONS["onnx"], params["size"],
                params["alpha"], params["beta"], params["bias"],
                "across_channels", "after")
            y = builder.LRN(
                nchw, size=attributes["size"],
                alpha=float(attributes["alpha"]),
                beta=float(attributes["beta"]),
                bias=float(attributes["bias"]), _outputs=[name])
            y.type = ir.TensorType(ir.DataType.FLOAT)
            if channels_last:
                stamp_type_and_shape(
                    y, (shape[0], shape[3], shape[1], shape[2]))
                y = builder.Transpose(
                    y, perm=[0, 2, 3, 1],
                    _outputs=[getattr(out_spec, "name", None)
                              or ctx.fresh_name("lrn")])
                y.type = ir.TensorType(ir.DataType.FLOAT)
            stamp_type_and_shape(y, shape)
            ctx.bind_value_for_var(y_var, y)

    return LRNPlugin


def onnx_node(x, window, alpha, beta, bias, window_scale=None, learned=()):
    """LRN as one `keras_lrn_lrn` primitive (ONNX's `LRN` once exported):
    across the channels (axis 1 or 3) of 4-D float32 `x`, an odd window,
    fixed parameters."""
    return _primitive().bind(
        x, size=window.before + window.after + 1, alpha=float(alpha),
        beta=float(beta), bias=float(bias),
        channels_last=window.axes[0] == 3)
