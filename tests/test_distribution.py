"""Training a model that holds the layer on two devices gives the weights
that training on one device gives: `tf.distribute.MirroredStrategy` on the
TensorFlow backend, `keras.distribution.DataParallel` on JAX.

Each runs in a fresh interpreter on two logical CPU devices (these must be
configured before the backend starts), trains the same model from the same
weights on the same batches on one device and on two, and prints both.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).parents[1]

MODEL = """
import keras, numpy as np
import keras_lrn

def trained(x, y):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.Conv2D(6, 3, padding="same")(inputs)
    hidden = keras_lrn.LRN(size=3, alpha=1e-2)(hidden)
    hidden = keras_lrn.LRN(size=3, alpha=1e-2, mode="within_channel")(hidden)
    outputs = keras.layers.Dense(2)(
        keras.layers.GlobalAveragePooling2D()(hidden))
    model = keras.Model(inputs, outputs)
    initial = [keras.ops.convert_to_numpy(w) for w in model.weights]
    model.compile(keras.optimizers.SGD(0.05), "mse")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    final = [keras.ops.convert_to_numpy(w) for w in model.weights]
    return initial, final

rng = np.random.default_rng(0)
x = rng.uniform(0, 10, (32, 8, 8, 3)).astype("float32")
y = rng.normal(size=(32, 2)).astype("float32")
"""

STRATEGIES = {
    "tensorflow": """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
""" + MODEL + """
single = trained(x, y)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
    distributed = trained(x, y)
""",
    "jax": MODEL + """
devices = keras.distribution.list_devices("cpu")
assert len(devices) == 2, devices
single = trained(x, y)
keras.distribution.set_distribution(
    keras.distribution.DataParallel(devices=devices))
distributed = trained(x, y)
""",
}

SAVE = """
np.savez(OUT, *single[0], *single[1], *distributed[0], *distributed[1])
"""


def run_training(backend, tmp_path):
    out = tmp_path / "weights.npz"
    code = f"OUT = {str(out)!r}\n" + STRATEGIES[backend] + SAVE
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend,
             "TF_CPP_MIN_LOG_LEVEL": "3",
             "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    arrays = list(np.load(out).values())
    count = len(arrays) // 4
    return [arrays[i * count:(i + 1) * count] for i in range(4)]


@pytest.mark.parametrize("backend", [
    pytest.param("tensorflow", id="MirroredStrategy",
                 marks=pytest.mark.tensorflow),
    pytest.param("jax", id="DataParallel", marks=pytest.mark.jax),
])
def test_two_devices_train_like_one(backend, tmp_path):
    single_initial, single_final, dist_initial, dist_final = run_training(
        backend, tmp_path)
    for a, b in zip(single_initial, dist_initial):
        np.testing.assert_array_equal(a, b)
    moved = max(np.abs(a - b).max()
                for a, b in zip(single_initial, single_final))
    assert moved > 1e-3  # training changed the weights
    for a, b in zip(single_final, dist_final):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
