"""The layer's learned parameters, each held in a weight as its logarithm.

`keras_lrn.layer.LocalResponseNormalization` stores a learned `alpha`,
`beta`, `bias` or `window_scale` as `log_of(value)` and computes with
`parameter_from_weight`, its `exp`. Every value the layer uses passes the
one value gate, `keras_lrn._value_gate`, as the layer computes it
(`check_values`). Only the layer imports this module: its constructor and
`build` check its initial values (`initial_logs`), `build` creates the
weights (`create_weights`), `call` and the parameters' properties read them
(`values_in_use`, `value_in_use`), and `load_own_variables`, `set_weights`
and `finalize_state` check what a `.keras` or legacy `.h5` file or the
caller gives them (`check_stored`: each weight one float, by `stored_logs`,
then the gate), `finalize_state` undoing a refused file (`reset_weights`).
"""

import math

import keras
import numpy as np

from keras_lrn import _arguments
from keras_lrn import _value_gate

__all__ = ["check_stored", "check_values", "create_weights", "initial_logs",
           "reset_weights", "value_in_use", "values_in_use",
           "weights_as_numpy"]


def log_of(value):
    """The value a learned parameter's weight holds: its logarithm (`exp`
    inverts it, see `parameter_from_weight`)."""
    return math.log(value)


def initial_logs(initial_values, names):
    """The logarithms the learned parameters `names` start from: those of
    the constructor's values `initial_values` (a dict by name)."""
    return {name: log_of(initial_values[name]) for name in names}


def create_weights(add_weight, initial_values, names):
    """The learned parameters' weights, by name, made by the layer's
    `add_weight`: scalars that start at their `initial_logs` and are never
    autocast (they hold logarithms)."""
    return {
        name: add_weight(name=name, shape=(), autocast=False,
                         initializer=keras.initializers.Constant(
                             np.float64(log)))
        for name, log in initial_logs(initial_values, names).items()
    }


def reset_weights(weights, initial_values):
    """Assigns each of the learned `weights` (a dict by name) its starting
    value, the logarithm of its `initial_values` entry."""
    for name, weight in weights.items():
        weight.assign(log_of(initial_values[name]))


def parameter_from_weight(name, weight, dtype):
    """The parameter a learned weight holds, `exp(weight)`; the window's
    scale is kept at least `_value_gate.smallest_window_scale(dtype)` so
    that training cannot drive it to where its weights underflow."""
    value = keras.ops.exp(weight)
    if name == "window_scale":
        smallest = keras.ops.convert_to_tensor(
            _value_gate.smallest_window_scale(dtype),
            dtype=keras.backend.standardize_dtype(value.dtype))
        # `where`, not `maximum`: Keras's PyTorch `maximum` returned float32
        # for float64 operands
        value = keras.ops.where(value > smallest, value, smallest)
    return value


def python_float(value):
    """A parameter `parameter_from_weight` computed, as a Python float."""
    # float32 holds every half-precision value exactly; NumPy has no
    # bfloat16 of its own
    if keras.backend.standardize_dtype(value.dtype) in (
            _arguments.HALF_PRECISION_DTYPES):
        value = keras.ops.cast(value, "float32")
    return float(keras.ops.convert_to_numpy(value))


def values_in_use(initial_values, weights, dtype):
    """The parameters a call computes with, by name: the constructor's
    `initial_values`, the learned ones `parameter_from_weight` of their
    `weights` (a dict of variables by name) in the compute `dtype`."""
    values = dict(initial_values)
    for name, weight in weights.items():
        values[name] = parameter_from_weight(name, weight, dtype)
    return values


def value_in_use(name, initial_values, weights, dtype):
    """The parameter `name` in use, as a Python float (or the constructor's
    value, `None` for an unused window scale): see `values_in_use`."""
    weight = weights.get(name)
    if weight is None:
        return initial_values[name]
    return python_float(parameter_from_weight(name, weight.value, dtype))


def check_values(initial_values, logs, compute_dtype, variable_dtype,
                 source=None):
    """The gate (`_value_gate.validate_for_compute_dtype`) for a layer's
    values in use: its constructor's `initial_values`, with the learned
    ones replaced by `exp` of their logarithms `logs` (a dict by name), in
    the dtypes the layer stores and computes them in."""
    values = dict(initial_values)
    return _value_gate.validate_for_compute_dtype(
        values["alpha"], values["beta"], values["bias"],
        compute_dtype, values["window_scale"], source=source,
        variable_dtype=variable_dtype, logs=logs,
    )


def stored_logs(names, weights, layer_name, source):
    """The logarithms a file or `set_weights` gives the learned parameters
    `names` (in the order of `weights`), by name, after checking that each
    is one real number of a float dtype.

    Raises:
        ValueError: naming the weight, the layer and `source`.
    """
    logs = {}
    for name, weight in zip(names, weights):
        array = np.asarray(weight)
        if array.dtype.kind != "f" and not array.dtype.name.startswith(
                "bfloat16"):
            raise ValueError(
                f"The weight `{name}` of layer '{layer_name}' ({source}) "
                "holds the logarithm of its parameter and must be a "
                f"float (float16, bfloat16, float32 or float64). "
                f"Received: {name} weight of dtype {array.dtype}"
            )
        if array.shape != ():
            raise ValueError(
                f"The weight `{name}` of layer '{layer_name}' ({source}) "
                "holds one number, the logarithm of its parameter. "
                f"Received: {name} weight of shape {array.shape}"
            )
        logs[name] = float(array.astype(np.float64))
    return logs


def check_stored(weights, names, initial_values, compute_dtype,
                 variable_dtype, layer_name, source):
    """The checks of the learned `weights` a file or `set_weights` gives a
    layer (in the order of `names`): `stored_logs`, then `check_values`,
    whose error names the layer, `source` and every stored logarithm.

    Raises:
        ValueError: naming the weight or value refused, and the bound.
    """
    if not weights:
        return
    logs = stored_logs(names, weights, layer_name, source)
    check_values(initial_values, logs, compute_dtype, variable_dtype, source=(
        f"the weights of layer '{layer_name}' {source}, which hold "
        + ", ".join(f"log({name})={value!r}" for name, value in logs.items())))


def weights_as_numpy(weights):
    """The current values of the learned `weights` (Keras variables) as
    NumPy arrays, bfloat16 ones through float32 (which holds them
    exactly)."""
    return [keras.ops.convert_to_numpy(
        keras.ops.cast(weight.value, "float32")
        if weight.dtype == "bfloat16" else weight.value)
        for weight in weights]
