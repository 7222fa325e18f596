"""Learned LRN (`learnable=`) and the exponential window (`window=`), on
every backend: against the float64 formulas of tests/reference.py, autodiff
of their `keras.ops` twins and finite differences; under XLA, in mixed
precision, through `.keras` files, and learning a teacher's parameters."""

import itertools
import pathlib
import re

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

BACKEND = keras.backend.backend()
BOX = ("alpha", "beta", "bias")
EXPONENTIAL = BOX + ("window_scale",)
VALUES = dict(alpha=3e-2, beta=0.7, bias=1.5, window_scale=1.7)


def subsets(names):
    return [False] + [
        subset for n in range(1, len(names) + 1)
        for subset in itertools.combinations(names, n)]


# every learnable combination of both windows, both layouts
CASES = (
    [dict(window="box", learnable=s, size=3) for s in subsets(BOX)]
    + [dict(window="exponential", learnable=s,
            window_scale=VALUES["window_scale"]) for s in subsets(EXPONENTIAL)]
    + [dict(window="box", learnable=True, size=4,
            data_format="channels_first"),
       dict(window="exponential", learnable=EXPONENTIAL, window_scale=0.8,
            data_format="channels_first"),
       dict(window="box", learnable=True, size=3, mode="within_channel")]
)


def case_id(case):
    learnable = case["learnable"]
    if isinstance(learnable, tuple):
        learnable = "+".join(learnable)
    return "-".join([case["window"], str(learnable)]
                    + [case[k] for k in ("data_format", "mode") if k in case])


def make_layer(case, dtype="float64"):
    arguments = dict(case)
    arguments.setdefault("data_format", "channels_last")
    return keras_lrn.LocalResponseNormalization(
        alpha=VALUES["alpha"], beta=VALUES["beta"], bias=VALUES["bias"],
        dtype=dtype, **arguments)


def input_for(rng, case, dtype=np.float64):
    shape = (2, 3, 6) if case.get("data_format") != "channels_first" else (
        2, 6, 3)
    if case.get("mode") == "within_channel":
        shape = (1, 4, 3, 2)
    return rng.uniform(-4, 4, shape).astype(dtype)


def reference_output(x, case, values, numpy=True):
    """The formula, NumPy (`numpy`) or plain `keras.ops`, at `values`."""
    data_format = case.get("data_format", "channels_last")
    if case["window"] == "exponential":
        function = (reference.exponential_lrn if numpy
                    else reference.differentiable_exponential_lrn)
        return function(x, values["alpha"], values["beta"], values["bias"],
                        values["window_scale"], data_format=data_format)
    function = reference.lrn if numpy else reference.differentiable_lrn
    return function(x, case["size"], values["alpha"], values["beta"],
                    values["bias"], mode=case.get("mode", "across_channels"),
                    data_format=data_format)


def gradients(function, arguments, upstream, compiled=False):
    """Gradients of sum(function(*arguments) * upstream) with respect to
    every argument, as NumPy arrays; `compiled` under XLA (TensorFlow's
    jit_compile, jax.jit)."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def step(*arguments):
            with tf.GradientTape() as tape:
                tape.watch(arguments)
                y = function(*arguments)
            return tape.gradient(y, arguments, output_gradients=upstream)

        if compiled:
            step = tf.function(step, jit_compile=True)
        result = step(*[tf.constant(a) for a in arguments])
    elif BACKEND == "jax":
        import jax

        def loss(*arguments):
            return keras.ops.sum(function(*arguments) * upstream)

        step = jax.grad(loss, argnums=tuple(range(len(arguments))))
        if compiled:
            step = jax.jit(step)
        result = step(*[keras.ops.convert_to_tensor(a) for a in arguments])
    else:
        import torch

        tensors = [_torch_tensor(a).requires_grad_() for a in arguments]
        loss = keras.ops.sum(function(*tensors) * _torch_tensor(upstream))
        result = torch.autograd.grad(loss, tensors)
    return [keras.ops.convert_to_numpy(g) for g in result]


def _torch_tensor(array):
    """A PyTorch tensor of `array`'s dtype (torch cannot read bfloat16
    NumPy arrays)."""
    import torch

    array = np.asarray(array)
    if array.dtype == reference.NUMPY_DTYPES["bfloat16"]:
        return torch.tensor(array.astype(np.float32)).to(torch.bfloat16)
    return torch.tensor(array)


def layer_function(layer):
    """The layer as a function of (x, *its trainable weights)."""

    def function(x, *weights):
        y, _ = layer.stateless_call(list(weights), [], x)
        return y

    return function


def weight_values(layer):
    return [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]


def values_from(case, weights):
    """The parameters at the log-weights `weights` (learned ones, in
    `PARAMETERS` order), others at their constructor values."""
    values = dict(VALUES)
    if case["window"] == "exponential":
        values["window_scale"] = case["window_scale"]
    learned = [n for n in EXPONENTIAL if n in learned_names(case)]
    for name, weight in zip(learned, weights):
        values[name] = (np.exp(weight)
                        if isinstance(weight, (np.ndarray, np.generic))
                        else keras.ops.exp(weight))
    return values


def learned_names(case):
    learnable = case["learnable"]
    if learnable is True:
        return BOX
    return learnable or ()


# --- arguments and configuration -------------------------------------------

@pytest.mark.parametrize("arguments, received", [
    (dict(learnable="alpha"), "learnable='alpha'"),
    (dict(learnable=("alpha", "gamma")), "learnable=('alpha', 'gamma')"),
    (dict(learnable=()), "learnable=()"),
    (dict(learnable=("beta", "beta")), "learnable=('beta', 'beta')"),
    (dict(learnable=("window_scale",)), "learnable=('window_scale',)"),
    (dict(learnable=1), "learnable=1"),
    (dict(window="gaussian"), "window='gaussian'"),
    (dict(window="exponential"), "window_scale=None"),
    (dict(window="exponential", window_scale=-1.0), "window_scale=-1.0"),
    (dict(window="exponential", window_scale=float("inf")),
     "window_scale=inf"),
    (dict(window_scale=2.0), "window_scale=2.0"),
    (dict(window="exponential", window_scale=2.0, mode="within_channel"),
     "mode='within_channel'"),
    (dict(alpha=0.0, learnable=True), "alpha=0.0"),
    (dict(beta=0.0, learnable=("beta",)), "beta=0.0"),
    (dict(learnable=True, implementation="native"),
     "implementation='native'"),
])
def test_invalid_arguments_are_named_in_the_error(arguments, received):
    with pytest.raises(ValueError,
                       match=r"Received: .*" + re.escape(received)):
        keras_lrn.LocalResponseNormalization(**arguments)


def test_default_layer_config_has_no_new_keys():
    config = keras_lrn.LocalResponseNormalization().get_config()
    assert not {"learnable", "window", "window_scale"} & set(config)


def test_file_of_release_0_1_0_still_loads():
    model = keras.saving.load_model(
        pathlib.Path(__file__).parent / "data" / "lrn_v0_1_0.keras")
    layers = [layer for layer in model.layers
              if isinstance(layer, keras_lrn.LocalResponseNormalization)]
    assert layers and all(not layer.learned_parameters and
                          not layer.weights for layer in layers)


@pytest.mark.parametrize("case", CASES[1:4] + CASES[-3:], ids=case_id)
def test_config_round_trips(case):
    layer = make_layer(case)
    config = layer.get_config()
    clone = keras_lrn.LocalResponseNormalization.from_config(config)
    assert clone.get_config() == config
    assert clone.learned_parameters == layer.learned_parameters


@pytest.mark.parametrize("learnable, expected", [
    (True, BOX), (("bias", "alpha"), ("alpha", "bias")),
    (("window_scale",), ("window_scale",))])
def test_weights_are_named_and_start_at_the_constructor_values(
        learnable, expected):
    layer = keras_lrn.LocalResponseNormalization(
        alpha=1e-4, beta=0.75, bias=2.0, window="exponential",
        window_scale=3.0, learnable=learnable)
    layer.build((1, 2, 2, 8))
    assert tuple(w.name for w in layer.trainable_weights) == expected
    constructor = dict(alpha=1e-4, beta=0.75, bias=2.0, window_scale=3.0)
    for weight in layer.trainable_weights:
        assert np.isclose(np.exp(keras.ops.convert_to_numpy(weight)),
                          constructor[weight.name], rtol=1e-6)
        # the value in use, read back
        assert getattr(layer, weight.name) == pytest.approx(
            constructor[weight.name], rel=1e-6)


@pytest.mark.parametrize("case", [
    dict(learnable=True), dict(window="exponential", window_scale=2.0)])
@pytest.mark.parametrize(
    "converter", ["to_tensorflow", "to_caffe", "to_torch", "to_onnx"])
def test_converters_refuse_what_a_framework_cannot_express(case, converter):
    layer = keras_lrn.LocalResponseNormalization(**case)
    with pytest.raises(ValueError, match="cannot express"):
        getattr(layer, converter)()


# --- values and gradients ----------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_the_float64_formula_with_exact_gradients(rng, float64,
                                                          case):
    layer = make_layer(case)
    x = input_for(rng, case)
    layer.build(x.shape)
    assert len(layer.trainable_weights) == len(learned_names(case))
    weights = weight_values(layer)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)),
        reference_output(x, case, values_from(case, weights)), rtol=1e-12)
    upstream = rng.normal(size=x.shape)
    actual = gradients(layer_function(layer), [x] + weights, upstream)
    expected = gradients(
        lambda x, *w: reference_output(x, case, values_from(case, w),
                                       numpy=False),
        [x] + weights, upstream)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", [CASES[7], CASES[-4], CASES[-2]],
                         ids=case_id)
def test_gradients_match_finite_differences_of_the_formula(rng, float64,
                                                           case):
    layer = make_layer(case)
    x = input_for(rng, case)
    layer.build(x.shape)
    weights = weight_values(layer)
    upstream = rng.normal(size=x.shape)
    actual = gradients(layer_function(layer), [x] + weights, upstream)
    step = 1e-6
    expected = [reference.numerical_gradient(
        lambda v: reference_output(v, case, values_from(case, weights)), x,
        upstream)]
    for index in range(len(weights)):
        def output_at(shift):
            shifted = [w.copy() for w in weights]
            shifted[index] = shifted[index] + shift
            return np.sum(reference_output(
                x, case, values_from(case, shifted)) * upstream)
        expected.append((output_at(step) - output_at(-step)) / (2 * step))
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-8)


@pytest.mark.tensorflow  # XLA: TensorFlow and JAX
@pytest.mark.jax
@pytest.mark.parametrize("case", [CASES[7], CASES[-4], CASES[-3]],
                         ids=case_id)
def test_gradients_under_xla_match_eager(rng, case):
    layer = make_layer(case, dtype="float32")
    x = input_for(rng, case, np.float32)
    layer.build(x.shape)
    arguments = [x] + weight_values(layer)
    upstream = rng.normal(size=x.shape).astype(np.float32)
    eager = gradients(layer_function(layer), arguments, upstream)
    compiled = gradients(layer_function(layer), arguments, upstream,
                         compiled=True)
    for c, e in zip(compiled, eager):
        np.testing.assert_allclose(c, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("case", [CASES[7], CASES[-4]], ids=case_id)
def test_mixed_precision_keeps_float32_parameters(rng, policy, case):
    layer = make_layer(case, dtype=policy)
    x = input_for(rng, case, np.float32)
    layer.build(x.shape)
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32"
               for w in layer.trainable_weights)
    half = policy.split("_")[1]
    x_half = x.astype(reference.NUMPY_DTYPES[half])
    y = layer(keras.ops.convert_to_tensor(x_half))
    assert keras.backend.standardize_dtype(y.dtype) == half
    weights = weight_values(layer)
    reference.assert_matches_in_dtype(
        keras.ops.convert_to_numpy(y).astype(np.float32),
        reference_output(x_half, case, values_from(case, weights)), half)
    # the upstream gradient in half precision, as the layer receives it; the
    # reference gets the same rounded values, in float32
    upstream = rng.normal(size=x.shape).astype(reference.NUMPY_DTYPES[half])
    actual = gradients(layer_function(layer), [x_half] + weights, upstream)
    expected = gradients(
        lambda x, *w: reference_output(x, case, values_from(case, w),
                                       numpy=False),
        [x_half.astype(np.float32)] + weights, upstream.astype(np.float32))
    # parameter gradients in float32, from a float32 computation of the
    # same rounded inputs: float32 rounding, summed over the input's
    # elements (a bound of the elements' count in epsilons, relative)
    rtol = x.size * float(np.finfo(np.float32).eps)
    for a, e in zip(actual[1:], expected[1:]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, e, rtol=rtol, atol=0)


def hessian_vector_product(function, x, upstream, direction):
    """d/dx <d/dx <function(x), upstream>, direction>."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = function(x)
            gradient = inner.gradient(y, x, output_gradients=upstream)
            projection = tf.reduce_sum(gradient * direction)
        return outer.gradient(projection, x).numpy()
    if BACKEND == "jax":
        import jax

        def first(x):
            return jax.grad(lambda t: keras.ops.sum(function(t) * upstream))(x)

        return np.asarray(jax.grad(
            lambda t: keras.ops.sum(first(t) * direction))(x))
    import torch

    x = torch.tensor(x, requires_grad=True)
    (gradient,) = torch.autograd.grad(
        keras.ops.sum(function(x) * torch.tensor(upstream)), x,
        create_graph=True)
    (second,) = torch.autograd.grad(
        keras.ops.sum(gradient * torch.tensor(direction)), x)
    return second.detach().numpy()


@pytest.mark.parametrize("case", [CASES[7], CASES[-4]], ids=case_id)
def test_second_order_in_x_matches_autodiff_of_the_formula(rng, float64,
                                                           case):
    layer = make_layer(case)
    x = input_for(rng, case)
    layer.build(x.shape)
    values = values_from(case, weight_values(layer))
    upstream, direction = rng.normal(size=(2,) + x.shape)
    actual = hessian_vector_product(layer, x, upstream, direction)
    expected = hessian_vector_product(
        lambda t: reference_output(t, case, values, numpy=False), x,
        upstream, direction)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-11)


# --- saving and learning ----------------------------------------------------

def test_keras_file_keeps_the_learned_values(rng, tmp_path):
    inputs = keras.Input((3, 3, 8))
    hidden = keras_lrn.LocalResponseNormalization(
        alpha=1e-3, learnable=True, name="box")(inputs)
    outputs = keras_lrn.LocalResponseNormalization(
        alpha=1e-3, window="exponential", window_scale=2.0,
        learnable=EXPONENTIAL, name="exponential")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.1), "mse")
    x = rng.uniform(0, 4, (4, 3, 3, 8)).astype(np.float32)
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    model.fit(x, 0.5 * x, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in model.weights]
    assert all(not np.allclose(a, b) for a, b in zip(after, before))
    path = tmp_path / "learned.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(loaded.weights, model.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x)),
        keras.ops.convert_to_numpy(model(x)))


def test_learns_the_parameters_of_a_teacher(rng):
    """A student starting at alpha 1e-4 learns a teacher's alpha 1e-1 (three
    orders of magnitude), beta and bias, with Adam (400 full-batch steps)."""
    keras.utils.set_random_seed(0)
    teacher = dict(alpha=0.1, beta=0.6, bias=1.5)
    # activations over two decades, so that alpha, beta and bias all matter
    x = np.exp(rng.uniform(-3, 2, (64, 2, 2, 8))).astype(np.float32)
    y = keras.ops.convert_to_numpy(
        keras_lrn.LocalResponseNormalization(size=3, **teacher)(x))
    student = keras_lrn.LocalResponseNormalization(
        size=3, alpha=1e-4, beta=0.75, bias=2.0, learnable=True)
    model = keras.Sequential([keras.Input((2, 2, 8)), student])
    model.compile(keras.optimizers.Adam(0.1), "mse")
    steps = 400
    model.fit(np.tile(x, (steps, 1, 1, 1)), np.tile(y, (steps, 1, 1, 1)),
              batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    learned = {w.name: float(np.exp(keras.ops.convert_to_numpy(w)))
               for w in student.trainable_weights}
    for name, value in teacher.items():
        assert learned[name] == pytest.approx(value, rel=0.03), learned


# --- safe at every value it accepts, from the constructor or a file ----------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_window_scale_down_to_the_smallest_accepted_matches_the_formula(
        rng, float64, dtype):
    """Every accepted window_scale, down to the smallest the compute dtype
    allows, gives the float64 formula's output (finite, also for a zero
    input) and finite gradients; one below is refused by the
    constructor."""
    from keras_lrn import _value_gate

    smallest = _value_gate.smallest_window_scale(dtype)
    x = rng.uniform(-4, 4, (2, 3, 9)).astype(dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-10
    for scale in (smallest, smallest * (1 + 1e-3), 0.02, 0.1, 0.5, 3.0,
                  1e4):
        case = dict(window="exponential", learnable=EXPONENTIAL,
                    window_scale=scale)
        layer = make_layer(case, dtype=dtype)
        values = dict(VALUES, window_scale=scale)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(x)),
            reference_output(x, case, values), rtol=rtol, atol=1e-30)
        zeros = keras.ops.convert_to_numpy(layer(np.zeros_like(x)))
        assert np.all(zeros == 0), scale
        upstream = rng.uniform(-1, 1, x.shape).astype(dtype)
        grads = gradients(layer_function(layer),
                          [x] + weight_values(layer), upstream)
        assert all(np.all(np.isfinite(g)) for g in grads), scale
        y = keras_lrn.ops.local_response_normalization(
            x, alpha=VALUES["alpha"], beta=VALUES["beta"],
            bias=VALUES["bias"], window="exponential", window_scale=scale)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(y),
                                   reference_output(x, case, values),
                                   rtol=rtol, atol=1e-30)
    with pytest.raises(ValueError, match=r"window_scale.*Received: "
                                         r"window_scale="):
        make_layer(dict(window="exponential", learnable=False,
                        window_scale=smallest * (1 - 1e-3)), dtype=dtype)


def _tamper_learned_weight(path, name, value):
    """Rewrites the stored log-value of the learned weight `name` of the
    model's one LRN layer in the `.keras` file at `path`."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive:
        files = {entry: archive.read(entry) for entry in archive.namelist()}
    buffer = io.BytesIO(files["model.weights.h5"])
    with h5py.File(buffer, "r+") as weights:
        variables = weights["layers/local_response_normalization/vars"]
        index = list(EXPONENTIAL).index(name)
        variables[str(index)][()] = value
    files["model.weights.h5"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for entry, content in files.items():
            archive.writestr(entry, content)


@pytest.mark.parametrize("name", EXPONENTIAL)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1000.0,
                                   -1000.0])
def test_tampered_learned_weights_in_a_keras_file_raise_naming_them(
        tmp_path, name, value):
    inputs = keras.Input((3, 3, 8))
    layer = keras_lrn.LocalResponseNormalization(
        window="exponential", window_scale=2.0, learnable=EXPONENTIAL,
        name="norm")
    path = tmp_path / "tampered.keras"
    keras.Model(inputs, layer(inputs)).save(path)
    _tamper_learned_weight(path, name, value)
    with pytest.raises(ValueError, match=rf"`{name}`.*{name}"):
        keras.models.load_model(path, safe_mode=True)


def test_loaded_learned_values_are_the_values_in_use(rng, tmp_path):
    inputs = keras.Input((3, 3, 8))
    layer = keras_lrn.LocalResponseNormalization(
        window="exponential", window_scale=2.0, learnable=EXPONENTIAL,
        name="norm")
    model = keras.Model(inputs, layer(inputs))
    trained = dict(alpha=3e-3, beta=0.6, bias=1.25, window_scale=0.75)
    for weight in layer.trainable_weights:
        weight.assign(np.log(trained[weight.name]))
    path = tmp_path / "trained.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True).get_layer("norm")
    for name, value in trained.items():
        assert getattr(loaded, name) == pytest.approx(value, rel=1e-6), name
    # the constructor's values stay the config's (the weights' start)
    assert loaded.get_config()["alpha"] == 1e-4
    x = rng.uniform(-3, 3, (2, 3, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)),
        reference.exponential_lrn(x, **trained), rtol=1e-5)


@pytest.mark.parametrize("case", [
    dict(learnable=True, size=5),
    dict(window="exponential", window_scale=2.0, learnable=EXPONENTIAL)],
    ids=["box", "exponential"])
def test_first_call_from_eight_threads_creates_each_weight_once(rng, case):
    import threading

    layer = keras_lrn.LocalResponseNormalization(
        alpha=1e-2, beta=0.75, bias=2.0, **case)
    x = rng.uniform(-3, 3, (2, 3, 3, 8)).astype(np.float32)
    barrier = threading.Barrier(8)
    outputs, errors = [], []

    def first_call():
        barrier.wait()
        try:
            outputs.append(keras.ops.convert_to_numpy(layer(x)))
        except Exception as error:  # noqa: BLE001 - collected for the assert
            errors.append(error)

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    expected_names = (list(BOX) if case.get("window") != "exponential"
                      else list(EXPONENTIAL))
    assert [w.name for w in layer.weights] == expected_names
    if case.get("window") == "exponential":
        expected = reference.exponential_lrn(x, 1e-2, 0.75, 2.0, 2.0)
    else:
        expected = reference.lrn(x, 5, 1e-2, 0.75, 2.0)
    for output in outputs:
        np.testing.assert_allclose(output, expected, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 4, 4, 0), (0, 0, 0, 0), (1, 0, 0, 8)])
@pytest.mark.parametrize("case", [
    dict(learnable=True),
    dict(learnable=True, mode="within_channel"),
    dict(window="exponential", window_scale=2.0),
    dict(window="exponential", window_scale=2.0, learnable=EXPONENTIAL)],
    ids=["box", "within", "exponential", "exponential-learned"])
def test_empty_inputs_return_themselves(case, shape):
    x = np.zeros(shape, np.float32)
    y = keras_lrn.LocalResponseNormalization(**case)(x)
    assert tuple(y.shape) == shape
    assert keras.backend.standardize_dtype(y.dtype) == "float32"


@pytest.mark.parametrize("builder, kwargs", [
    ("AlexNet", dict(variant="original", input_shape=(67, 67, 3))),
    ("AlexNet", dict(variant="caffenet", input_shape=(67, 67, 3))),
    ("AlexNet", dict(variant="bvlc", input_shape=(67, 67, 3))),
    ("ZFNet", dict(variant="paper", input_shape=(53, 53, 3))),
    ("ZFNet", dict(variant="zfnet512", input_shape=(59, 59, 3))),
    ("GoogLeNet", dict(input_shape=(61, 61, 3)))])
def test_every_application_offers_learned_lrn(builder, kwargs):
    from keras_lrn import applications

    build = getattr(applications, builder)
    fixed = [layer for layer in build(include_top=False, **kwargs).layers
             if isinstance(layer, keras_lrn.LocalResponseNormalization)]
    learned = [layer for layer in build(include_top=False,
                                        normalization="learned",
                                        **kwargs).layers
               if isinstance(layer, keras_lrn.LocalResponseNormalization)]
    assert fixed and [l.name for l in learned] == [l.name for l in fixed]
    for before, after in zip(fixed, learned):
        assert after.window == "exponential"
        assert [w.name for w in after.trainable_weights] == list(EXPONENTIAL)
        assert [after.alpha, after.beta, after.bias, after.window_scale] == (
            pytest.approx([before.alpha, before.beta, before.bias, 2.5],
                          rel=1e-6))
    with pytest.raises(ValueError, match="'learned'"):
        build(include_top=False, normalization="foo", **kwargs)
