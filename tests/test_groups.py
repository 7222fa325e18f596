"""Grouped LRN (`groups=`): the window stays inside each of `groups` equal
contiguous channel groups, as AlexNet's two GPU towers normalized theirs.

Checked against the definition (one ungrouped LRN per group, concatenated:
bit for bit in float64) and against the float64 formula of
tests/reference.py run once per group, on the backend under test, under XLA,
through `.keras` files and ONNX export. (AlexNet's towers are tested in
tests/test_alexnet.py.)
"""

import pathlib

import keras
import numpy as np
import pytest

import keras_lrn
from tests import reference

BACKEND = keras.backend.backend()
DATA = pathlib.Path(__file__).parent / "data"
KWARGS = dict(alpha=1e-2, beta=0.75, bias=2.0)


def channel_axis(data_format):
    return -1 if data_format == "channels_last" else 1


def alexnet_input(rng, data_format, dtype=np.float64):
    """96 channels (AlexNet's first LRN), two towers of 48."""
    shape = (2, 3, 3, 96) if data_format == "channels_last" else (2, 96, 3, 3)
    return rng.uniform(-10, 10, shape).astype(dtype)


def halves_concatenated(data_format, dtype, **arguments):
    """Two ungrouped layers, one per half of the channels, concatenated:
    what cuda-convnet's [rnorm1a] and [rnorm1b] computed."""
    axis = channel_axis(data_format)
    layers = [keras_lrn.LRN(data_format=data_format, dtype=dtype, **arguments)
              for _ in range(2)]

    def function(x):
        parts = keras.ops.split(x, 2, axis=axis)
        return keras.ops.concatenate(
            [layer(part) for layer, part in zip(layers, parts)], axis=axis)

    return function


def compiled(function):
    """The backend's compiler: XLA on TensorFlow and JAX, torch.compile."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    import torch

    return torch.compile(function)


def value_and_gradient(function, x, upstream, compile_=False):
    """`function(x)` and the gradient of sum(function(x) * upstream) with
    respect to `x`, as NumPy arrays."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = function(x)
            return y, tape.gradient(y, x, output_gradients=upstream)

        if compile_:
            step = tf.function(step, jit_compile=True)
        y, gradient = step(tf.constant(x))
    elif BACKEND == "jax":
        import jax

        def step(x):
            y, pullback = jax.vjp(function, x)
            return y, pullback(keras.ops.convert_to_tensor(upstream))[0]

        if compile_:
            step = jax.jit(step)
        y, gradient = step(keras.ops.convert_to_tensor(x))
    else:
        import torch

        step = compiled(function) if compile_ else function
        x = torch.tensor(x).requires_grad_()
        y = step(x)
        (gradient,) = torch.autograd.grad(
            y, x, torch.tensor(upstream, dtype=x.dtype))
        y = y.detach()
    return keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(gradient)


def per_group_reference(x, groups, data_format="channels_last",
                        window="box", **arguments):
    """The float64 formula of tests/reference.py run once per group."""
    axis = channel_axis(data_format)
    if window == "exponential":
        outputs = [reference.exponential_lrn(part, data_format=data_format,
                                             **arguments)
                   for part in np.split(x, groups, axis=axis)]
    else:
        outputs = [reference.lrn(part, data_format=data_format, **arguments)
                   for part in np.split(x, groups, axis=axis)]
    return np.concatenate(outputs, axis=axis)


def per_group_differentiable_reference(x, groups, data_format, window,
                                       **arguments):
    """The formula in plain `keras.ops` run once per group (autodiff)."""
    axis = channel_axis(data_format)
    function = (reference.differentiable_exponential_lrn
                if window == "exponential" else reference.differentiable_lrn)
    return keras.ops.concatenate(
        [function(part, data_format=data_format, **arguments)
         for part in keras.ops.split(x, groups, axis=axis)], axis=axis)


# --- the acceptance: LRN(groups=2) == two LRN() halves concatenated ---------


# every dtype and layout, eagerly and compiled; torch.compile (tens of
# seconds per program on a CPU) compiles one layout per dtype
HALVES_CASES = [
    (dtype, data_format, compile_)
    for dtype in ("float64", "float32")
    for data_format in ("channels_last", "channels_first")
    for compile_ in (False, True)
    if not (compile_ and BACKEND == "torch"
            and (dtype == "float64") != (data_format == "channels_last"))
]


@pytest.mark.parametrize(
    "dtype, data_format, compile_", HALVES_CASES,
    ids=[f"{d}-{f}-{'xla' if c else 'eager'}" for d, f, c in HALVES_CASES])
def test_groups_of_two_equal_two_layers_on_the_halves(
        rng, float64, dtype, data_format, compile_):
    x = alexnet_input(rng, data_format, dtype)
    upstream = rng.normal(size=x.shape).astype(dtype)
    grouped = keras_lrn.LRN(groups=2, data_format=data_format, dtype=dtype,
                            **KWARGS)
    y, gradient = value_and_gradient(grouped, x, upstream, compile_)
    expected_y, expected_gradient = value_and_gradient(
        halves_concatenated(data_format, dtype, **KWARGS), x, upstream,
        compile_)
    assert y.dtype == np.dtype(dtype)
    if dtype == "float64":
        np.testing.assert_array_equal(y, expected_y)
        np.testing.assert_array_equal(gradient, expected_gradient)
    else:
        # the same float32 computation, which a compiler may fuse otherwise
        # for another shape: a few roundings apart at most
        eps = np.finfo(np.float32).eps
        np.testing.assert_allclose(y, expected_y, rtol=4 * eps, atol=0)
        np.testing.assert_allclose(gradient, expected_gradient,
                                   rtol=16 * eps, atol=16 * eps)
    # and both are the formula, one group at a time
    x64 = x.astype(np.float64)
    reference.assert_matches_in_dtype(
        y, per_group_reference(x64, 2, data_format, size=5, **KWARGS), dtype)


def test_groups_differ_from_ungrouped_only_at_the_towers_edges(rng, float64):
    x = alexnet_input(rng, "channels_last")
    grouped = keras.ops.convert_to_numpy(
        keras_lrn.LRN(groups=2, dtype="float64", **KWARGS)(x))
    ungrouped = keras.ops.convert_to_numpy(
        keras_lrn.LRN(dtype="float64", **KWARGS)(x))
    differs = np.any(grouped != ungrouped, axis=(0, 1, 2))
    # a window of 5 reaches 2 channels across the edge between 47 and 48
    assert np.flatnonzero(differs).tolist() == [46, 47, 48, 49]


# --- exact against the float64 formula, one reference per group -------------

CASES = [
    dict(groups=2, size=5),
    dict(groups=3, size=4, even_window_side="before"),
    dict(groups=4, size=3, data_format="channels_first"),
    dict(groups=2, size=9),  # wider than a group of 6: clamped inside it
    dict(groups=3, window="exponential", window_scale=1.5),
    dict(groups=2, window="exponential", window_scale=0.8,
         data_format="channels_first"),
    dict(groups=12, size=5),  # one channel per group
]


def case_id(case):
    return "-".join(f"{k}={v}" for k, v in case.items())


def reference_arguments(case):
    arguments = dict(case)
    del arguments["groups"]
    arguments.setdefault("data_format", "channels_last")
    arguments.setdefault("window", "box")
    if arguments["window"] == "box":
        arguments.setdefault("size", 5)
    return arguments


def small_input(rng, case, dtype=np.float64):
    shape = ((2, 12, 3, 2) if case.get("data_format") == "channels_first"
             else (2, 3, 2, 12))
    return rng.uniform(-8, 8, shape).astype(dtype)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_the_formula_run_per_group_with_exact_gradients(
        rng, float64, case):
    x = small_input(rng, case)
    layer = keras_lrn.LRN(dtype="float64", **KWARGS, **case)
    arguments = reference_arguments(case)
    upstream = rng.normal(size=x.shape)
    y, gradient = value_and_gradient(layer, x, upstream)
    np.testing.assert_allclose(
        y, per_group_reference(x, case["groups"], **KWARGS, **arguments),
        rtol=1e-12)
    _, expected = value_and_gradient(
        lambda x: per_group_differentiable_reference(
            x, case["groups"], **KWARGS, **arguments), x, upstream)
    np.testing.assert_allclose(gradient, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("case", CASES[:3] + CASES[4:5], ids=case_id)
def test_every_dtype_matches_the_formula_per_group(rng, case, dtype):
    x = small_input(rng, case).astype(reference.NUMPY_DTYPES[dtype])
    layer = keras_lrn.LRN(dtype=dtype, **KWARGS, **case)
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.dtype == reference.NUMPY_DTYPES[dtype]
    expected = per_group_reference(x.astype(np.float64), case["groups"],
                                   **KWARGS, **reference_arguments(case))
    reference.assert_matches_in_dtype(y, expected, dtype)


def test_functional_op_takes_groups(rng):
    x = small_input(rng, CASES[0], np.float32)
    y = keras_lrn.ops.local_response_normalization(x, groups=2, **KWARGS)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y),
        per_group_reference(x.astype(np.float64), 2, size=5, **KWARGS),
        rtol=1e-5)
    # symbolic inputs: a functional model built from the op
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, keras_lrn.ops.local_response_normalization(
        inputs, groups=2, **KWARGS))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)),
                                  keras.ops.convert_to_numpy(y))


@pytest.mark.tensorflow  # a tf.function traced with unknown lengths
def test_unknown_batch_and_spatial_lengths_when_traced(rng):
    import tensorflow as tf

    for data_format, shape in (("channels_last", (None, None, None, 12)),
                               ("channels_first", (None, 12, None, None))):
        case = dict(data_format=data_format)
        layer = keras_lrn.LRN(groups=3, data_format=data_format, **KWARGS)
        function = tf.function(layer, input_signature=[
            tf.TensorSpec(shape, tf.float32)])
        x = small_input(rng, case, np.float32)
        np.testing.assert_allclose(
            function(x).numpy(),
            per_group_reference(x.astype(np.float64), 3, data_format,
                                size=5, **KWARGS), rtol=1e-5)


# --- learned grouped LRN ------------------------------------------------------


@pytest.mark.parametrize("window", ["box", "exponential"])
def test_learned_grouped_layer_gradients_match_the_formula_per_group(
        rng, float64, window):
    extra = (dict(size=3) if window == "box"
             else dict(window_scale=1.5))
    layer = keras_lrn.LRN(groups=2, learnable=True, window=window,
                          dtype="float64", **KWARGS, **extra)
    x = rng.uniform(-4, 4, (2, 3, 8))
    layer.build(x.shape)
    upstream = rng.normal(size=x.shape)
    names = [w.name for w in layer.trainable_weights]
    assert names == ["alpha", "beta", "bias"]

    def parts(x, *logs):
        values = dict(zip(names, [keras.ops.exp(v) for v in logs]))
        arguments = dict(extra, **values)
        return per_group_differentiable_reference(
            x, 2, "channels_last", window, **arguments)

    logs = [keras.ops.convert_to_numpy(w.value) for w in layer.weights]
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y = layer(x)
        actual = tape.gradient(y, layer.trainable_variables,
                               output_gradients=upstream)
        tensors = [tf.constant(v) for v in logs]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            expected_y = parts(tf.constant(x), *tensors)
        expected = tape.gradient(expected_y, tensors,
                                 output_gradients=upstream)
    elif BACKEND == "jax":
        import jax

        def loss(values, function):
            return keras.ops.sum(function(values) * upstream)

        stateless = lambda values: layer.stateless_call(  # noqa: E731
            values, [], x)[0]
        actual = jax.grad(loss)([w.value for w in layer.weights], stateless)
        expected = jax.grad(loss)(
            [keras.ops.convert_to_tensor(v) for v in logs],
            lambda values: parts(keras.ops.convert_to_tensor(x), *values))
        y = stateless([w.value for w in layer.weights])
        expected_y = parts(x, *logs)
    else:
        import torch

        y = layer(torch.tensor(x))
        actual = torch.autograd.grad(
            y, [w.value for w in layer.weights], torch.tensor(upstream))
        tensors = [torch.tensor(v).requires_grad_() for v in logs]
        expected_y = parts(torch.tensor(x), *tensors)
        expected = torch.autograd.grad(expected_y, tensors,
                                       torch.tensor(upstream))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y),
                               keras.ops.convert_to_numpy(expected_y),
                               rtol=1e-12)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a),
                                   keras.ops.convert_to_numpy(e),
                                   rtol=1e-9, atol=1e-12)


# --- configs and files --------------------------------------------------------


def test_config_holds_groups_only_where_grouped():
    assert "groups" not in keras_lrn.LRN().get_config()
    config = keras_lrn.LRN(groups=2).get_config()
    assert config["groups"] == 2
    assert keras_lrn.LRN.from_config(config).groups == 2


def test_file_written_before_groups_still_loads_ungrouped():
    model = keras.saving.load_model(DATA / "lrn_v0_1_0.keras")
    layers = [layer for layer in model.layers
              if isinstance(layer, keras_lrn.LRN)]
    assert layers and all(layer.groups == 1 for layer in layers)
    assert all("groups" not in layer.get_config() for layer in layers)


@pytest.mark.parametrize("learnable", [False, True])
def test_keras_file_round_trip_keeps_groups(rng, tmp_path, learnable):
    inputs = keras.Input((3, 3, 96))
    model = keras.Model(inputs, keras_lrn.LRN(
        groups=2, learnable=learnable, **KWARGS)(inputs))
    x = alexnet_input(rng, "channels_last", np.float32)
    model.save(tmp_path / "grouped.keras")
    loaded = keras.saving.load_model(tmp_path / "grouped.keras")
    assert loaded.layers[-1].groups == 2
    y = keras.ops.convert_to_numpy(loaded(x))
    np.testing.assert_array_equal(y, keras.ops.convert_to_numpy(model(x)))
    np.testing.assert_array_equal(
        y, keras.ops.convert_to_numpy(
            halves_concatenated("channels_last", "float32",
                                learnable=learnable, **KWARGS)(x)))


# --- converters ---------------------------------------------------------------


@pytest.mark.parametrize("converter, arguments", [
    ("from_caffe", dict(local_size=5, alpha=5e-2, beta=0.75, k=2.0)),
    ("from_torch", dict(size=5, alpha=5e-2, beta=0.75, k=2.0)),
    ("from_onnx", dict(size=5, alpha=5e-2, beta=0.75, bias=2.0)),
    ("from_tensorflow", dict(depth_radius=2, alpha=1e-2, beta=0.75,
                             bias=2.0)),
])
def test_converters_take_groups(converter, arguments):
    layer = getattr(keras_lrn.LRN, converter)(groups=2, **arguments)
    assert layer.groups == 2
    assert (layer.size, layer.alpha) == (5, 1e-2)


@pytest.mark.parametrize("converter",
                         ["to_caffe", "to_torch", "to_onnx", "to_tensorflow"])
def test_other_frameworks_cannot_express_groups(converter):
    with pytest.raises(ValueError, match=r"groups.*Received: layer with "
                                         r"groups=2"):
        getattr(keras_lrn.LRN(groups=2), converter)()
    assert getattr(keras_lrn.LRN(groups=1), converter)()


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize("groups", [0, -2, True, 2.0, "2", None])
def test_groups_must_be_a_positive_integer(groups):
    match = r"`groups` must be an integer >= 1.*Received: groups="
    with pytest.raises(ValueError, match=match):
        keras_lrn.LRN(groups=groups)
    with pytest.raises(ValueError, match=match):
        keras_lrn.ops.local_response_normalization(
            np.ones((1, 2, 2, 4), np.float32), groups=groups)


def test_within_channel_refuses_groups():
    with pytest.raises(ValueError, match=r"already inside one channel.*"
                       r"Received: groups=2 with mode='within_channel'"):
        keras_lrn.LRN(groups=2, mode="within_channel")
    assert keras_lrn.LRN(groups=1, mode="within_channel").groups == 1


@pytest.mark.tensorflow  # elsewhere 'native' is refused for the backend
def test_native_refuses_groups():
    with pytest.raises(ValueError, match=r"cannot keep windows inside "
                       r"groups.*Received: groups=2"):
        keras_lrn.LRN(groups=2, implementation="native")


@pytest.mark.parametrize("data_format, shape", [
    ("channels_last", (2, 3, 3, 10)), ("channels_first", (2, 10, 3, 3))])
def test_groups_must_divide_the_channels(data_format, shape):
    match = (r"10 channels cannot be split into 3 groups\. Received: "
             rf"groups=3, input shape=\({shape[0]}, {shape[1]}")
    with pytest.raises(ValueError, match=match):
        keras_lrn.LRN(groups=3, data_format=data_format).build(shape)
    with pytest.raises(ValueError, match=match):
        keras_lrn.ops.local_response_normalization(
            np.ones(shape, np.float32), groups=3, data_format=data_format)
    with pytest.raises(ValueError, match=r"10 channels cannot be split"):
        keras.Model(*(lambda i: (i, keras_lrn.LRN(
            groups=3, data_format=data_format)(i)))(keras.Input(shape[1:])))


# --- ONNX export --------------------------------------------------------------

EXPORTER = {"tensorflow": "tf2onnx", "jax": "jax2onnx", "torch": "torch"}[
    BACKEND]


@pytest.mark.parametrize("native", [
    False,
    # native_for_export switches TensorFlow's op
    pytest.param(True, marks=pytest.mark.tensorflow),
], ids=["export", "native_for_export"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_onnx_export_runs_in_onnxruntime(rng, tmp_path, data_format, native):
    # the exporter and onnxruntime come with keras-lrn's test extra
    pytest.importorskip(EXPORTER)
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")

    shape = (3, 3, 12) if data_format == "channels_last" else (12, 3, 3)
    inputs = keras.Input(shape)
    model = keras.Model(inputs, keras_lrn.LRN(
        groups=2, data_format=data_format, **KWARGS)(inputs))
    x = rng.uniform(0, 20, (3,) + shape).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x))
    path = str(tmp_path / "grouped.onnx")
    if native:
        with keras_lrn.native_for_export():
            model.export(path, format="onnx", verbose=False)
    else:
        model.export(path, format="onnx", verbose=False)
    nodes = [node.op_type for node in onnx.load(path).graph.node]
    if BACKEND != "tensorflow" and data_format == "channels_first":
        # the groups as batch entries: one ONNX LRN node computes them all
        assert nodes.count("LRN") == 1, nodes
    session = onnxruntime.InferenceSession(path)
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(
        output, per_group_reference(x, 2, data_format, size=5, **KWARGS),
        rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    # the batch dimension stays dynamic in the export
    (output,) = session.run(None, {session.get_inputs()[0].name: x[:1]})
    np.testing.assert_allclose(output, expected[:1], rtol=1e-5, atol=1e-6)
