"""keras_lrn._formula: the one power table and the forward and backward
written from it, against float64 NumPy (tests/reference.py)."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_lrn import _formula
from keras_lrn import _windows
from tests import reference

BETAS = [0.0, 0.5, 0.75, 1.0, 0.6, 2.5]


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("learned", [False, True])
def test_beta_power_is_t_to_the_beta(rng, float64, beta, learned):
    t = rng.uniform(0.1, 50, (3, 7))
    path = _formula.beta_path_of(beta, ("beta",) if learned else ())
    assert path == ("learned" if learned else
                    beta if beta in _formula.BETA_PATHS else None)
    power = _formula.beta_power(
        keras.ops.convert_to_tensor(t), path,
        keras.ops.convert_to_tensor(beta, dtype="float64"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(power), t**beta,
                               rtol=1e-14)


@pytest.mark.parametrize("beta", BETAS)
def test_beta_power_of_infinity_divides_to_zero(beta):
    t = keras.ops.convert_to_tensor(np.array([np.inf, 1.0], np.float32))
    power = _formula.beta_power(t, _formula.beta_path_of(beta), beta)
    quotient = keras.ops.convert_to_numpy(3.0 / power)
    assert quotient[0] == (3.0 if beta == 0 else 0.0)
    assert quotient[1] == 3.0


def in_place_primitives():
    """Primitives that write into their first argument, as PyTorch's
    in-place kernels do: the table must never read an argument after
    handing it to one (a NumPy model of `TORCH_IN_PLACE`)."""
    def sqrt(t):
        np.sqrt(t, out=t)
        return t

    def multiply(a, b):
        np.multiply(a, b, out=a)
        return a

    def power(t, beta):
        np.power(t, beta, out=t)
        return t

    def ones_like(t):
        t[...] = 1.0
        return t

    return _formula.Primitives(sqrt=sqrt, multiply=multiply, power=power,
                               exp=np.exp, log=np.log, ones_like=ones_like,
                               in_place=True)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.75, 1.0, 0.6])
def test_beta_power_holds_with_primitives_that_write_in_place(rng, beta):
    t = rng.uniform(0.1, 50, (4, 5))
    power = _formula.beta_power(t.copy(), _formula.beta_path_of(beta), beta,
                                in_place_primitives())
    np.testing.assert_allclose(power, t**beta, rtol=1e-14)


@pytest.mark.parametrize("beta", [0.75, 0.6])
@pytest.mark.parametrize("learned", [(), ("alpha", "beta", "bias")])
@pytest.mark.parametrize("totals", ["separate", "by_row_products"])
def test_forward_and_backward_match_the_reference(rng, float64, beta,
                                                  learned, totals):
    shape = (2, 3, 3, 6)
    x = rng.uniform(-3, 3, shape)
    upstream = rng.normal(size=shape)
    window = _windows.BoxWindow.of(shape, 3, "across_channels",
                                   "channels_last", "after")
    alpha, bias = 1e-2, 2.0
    parameters = [keras.ops.convert_to_tensor(v, dtype="float64")
                  if name in learned else v
                  for name, v in (("alpha", alpha), ("beta", beta),
                                  ("bias", bias))]
    xt = keras.ops.convert_to_tensor(x)
    structure = _formula.Structure.of(xt, window, *parameters[:2], learned)
    c = _formula.coefficients(*parameters, None, "float64")
    y, residual = _formula.forward(xt, c, structure)
    expected = reference.lrn(x, size=3, alpha=alpha, beta=beta, bias=bias)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), expected,
                               rtol=1e-12)
    primitives = _formula.KERAS_PRIMITIVES
    if totals == "by_row_products":  # TensorFlow's (keras_lrn._compilation)
        primitives = dataclasses.replace(
            primitives, totals=_formula.totals_by_row_products)
    dx, dc = _formula.backward(xt, keras.ops.convert_to_tensor(upstream),
                               residual, c, structure, primitives)

    def loss(x=x, alpha=alpha, beta=beta, bias=bias):
        return np.sum(upstream * reference.lrn(x, size=3, alpha=alpha,
                                               beta=beta, bias=bias))

    step = 1e-6
    index = (0, 1, 2, 3)
    moved = x.copy()
    moved[index] += step
    numeric = (loss(moved) - loss()) / step
    assert keras.ops.convert_to_numpy(dx)[index] == pytest.approx(
        numeric, rel=1e-4)
    dc = keras.ops.convert_to_numpy(dc)
    for name, value in (("alpha", alpha), ("beta", beta), ("bias", bias)):
        slot = _formula.COEFFICIENT_OF[name]
        if name not in learned:
            assert dc[slot] == 0
            continue
        h = 1e-6 * value
        numeric = (loss(**{name: value + h}) - loss(**{name: value - h})) / (
            2 * h)
        assert dc[slot] == pytest.approx(numeric, rel=1e-5)


@pytest.mark.tensorflow
def test_totals_by_row_products_with_an_unknown_last_axis(rng):
    # channels_first inputs traced with unknown spatial lengths: the rows'
    # length is known only when the graph runs
    import tensorflow as tf

    terms = [rng.normal(size=(2, 3, 4, 5)) for _ in range(3)]

    @tf.function(input_signature=[tf.TensorSpec((None, 3, None, None),
                                                tf.float64)] * 3)
    def totals(*values):
        return tf.stack(_formula.totals_by_row_products(list(values)))

    np.testing.assert_allclose(totals(*terms).numpy(),
                               [np.sum(term) for term in terms], rtol=1e-13)
