"""Training across processes, as two machines would: the AlexNet application
(67x67 input, 10 classes, a few SGD steps) with data parallelism across 2
processes on this machine, against 1 process with the same global batch.

- JAX: Keras's distribution API, `keras.distribution.initialize` (which
  calls `jax.distributed.initialize`) with the coordinator on a loopback
  port, and `keras.distribution.DataParallel` over both processes' devices;
  each process feeds its half of every global batch.
- TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy` with `TF_CONFIG`
  naming 2 workers on loopback ports; the dataset of global batches is
  sharded by data (each worker takes its half of every batch), and a
  custom training loop (`strategy.run`) trains: Keras 3.15's `fit` fails
  under this strategy (it reduces a batch tuple and scalar metrics with
  `strategy.reduce`, which the strategy refuses). The 1-process run uses
  the same loop.

The losses of every step match the 1-process run to float32 rounding (the
gradients' sum runs in another order), and so do the final weights. Ports
are picked free at run time, only 127.0.0.1 is used, every process has a
bounded time and is killed if the test fails. docs/guides/distributed.md
explains the commands a cluster would run.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).parents[1]
TIMEOUT = 240  # seconds for the whole run; each one takes well under 60
pytestmark = pytest.mark.distributed

COMMON = r"""
import json, os, sys
import keras
import numpy as np

ROLE, OUT = sys.argv[1], sys.argv[2]  # "worker0", "worker1" or "single"
PROCESS = int(ROLE[-1]) if ROLE != "single" else 0
STEPS, GLOBAL_BATCH, WORKERS = 3, 8, 2
rng = np.random.default_rng(0)
images = rng.uniform(-1, 1, (STEPS * GLOBAL_BATCH, 67, 67, 3)).astype("float32")
labels = rng.integers(0, 10, STEPS * GLOBAL_BATCH)

def alexnet():
    from keras_lrn.applications import AlexNet
    keras.utils.set_random_seed(7)
    model = AlexNet(input_shape=(67, 67, 3), classes=10, dropout=0.0,
                    classifier_activation=None)
    model.compile(keras.optimizers.SGD(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model

class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []
    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))

def save(model, losses, devices):
    weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]
    np.savez(OUT + ".npz", *weights)
    with open(OUT + ".json", "w") as f:
        json.dump(dict(losses=losses, devices=devices), f)

def train_single():
    model = alexnet()
    losses = StepLosses()
    model.fit(images, labels, batch_size=GLOBAL_BATCH, epochs=1,
              shuffle=False, verbose=0, callbacks=[losses])
    save(model, losses.losses, 1)
"""

JAX = COMMON + r"""
if ROLE == "single":
    train_single()
    sys.exit()
keras.distribution.initialize(job_addresses="127.0.0.1:" + os.environ["PORT"],
                              num_processes=WORKERS, process_id=PROCESS)
import jax
devices = keras.distribution.list_devices()
assert len(devices) == WORKERS and jax.process_count() == WORKERS, devices
# each process feeds its half of every global batch (sharded here, as each
# machine would read its own files)
keras.distribution.set_distribution(keras.distribution.DataParallel(
    devices=devices, auto_shard_dataset=False))
local = GLOBAL_BATCH // WORKERS
index = np.arange(STEPS * GLOBAL_BATCH).reshape(STEPS, WORKERS, local)
index = index[:, PROCESS].reshape(-1)
model = alexnet()
losses = StepLosses()
model.fit(images[index], labels[index], batch_size=local, epochs=1,
          shuffle=False, verbose=0, callbacks=[losses])
save(model, losses.losses, len(devices))
"""

TENSORFLOW = COMMON + r"""
import tensorflow as tf

if ROLE != "single":
    # before any other TensorFlow op: the strategy configures the runtime
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": ["127.0.0.1:" + port
                               for port in os.environ["PORTS"].split(",")]},
        "task": {"type": "worker", "index": PROCESS}})
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == WORKERS, (
        strategy.num_replicas_in_sync)

def train_custom(strategy, dataset):
    # Keras's fit does not run under MultiWorkerMirroredStrategy in Keras
    # 3.15 (it reduces batches and metrics in ways the strategy refuses):
    # TensorFlow's custom training loop, the same for 1 process and 2,
    # with the model and its Keras optimizer
    with strategy.scope():
        model = alexnet()
        loss_function = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction=None)

    @tf.function
    def step(images, labels):
        def replica_step(images, labels):
            with tf.GradientTape() as tape:
                logits = model(images, training=True)
                # the mean over the global batch, of which this replica
                # holds a part; the optimizer sums the replicas' gradients
                loss = tf.nn.compute_average_loss(
                    loss_function(labels, logits),
                    global_batch_size=GLOBAL_BATCH)
            gradients = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(
                zip(gradients, model.trainable_variables))
            return loss
        losses = strategy.run(replica_step, args=(images, labels))
        return strategy.reduce("SUM", losses, axis=None)

    losses = [float(step(*batch)) for batch in dataset]
    save(model, losses, strategy.num_replicas_in_sync)

batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(
    GLOBAL_BATCH)
if ROLE == "single":
    train_custom(tf.distribute.get_strategy(), batches)
    sys.exit()
# each worker takes its half of every global batch
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = (
    tf.data.experimental.AutoShardPolicy.DATA)
train_custom(strategy, strategy.experimental_distribute_dataset(
    batches.with_options(options)))
"""


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [str(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_processes(backend, script, tmp_path):
    """Starts the 1-process run and the 2 workers at once; returns each
    one's (losses, devices, weights). Kills all of them on failure."""
    ports = free_ports(2)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": backend,
           "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
           "PORT": ports[0], "PORTS": ",".join(ports),
           "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env.pop("XLA_FLAGS", None)
    env.pop("TF_CONFIG", None)
    roles = ["single", "worker0", "worker1"]
    processes = {}
    try:
        for role in roles:
            processes[role] = subprocess.Popen(
                [sys.executable, "-c", script, role, str(tmp_path / role)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + TIMEOUT
        outputs = {}
        for role, process in processes.items():
            try:
                outputs[role] = process.communicate(
                    timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{backend} {role} did not finish in {TIMEOUT} s")
            assert process.returncode == 0, (
                f"{backend} {role} failed:\n{outputs[role][1][-3000:]}")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    results = {}
    for role in roles:
        record = json.loads((tmp_path / f"{role}.json").read_text())
        weights = list(np.load(tmp_path / f"{role}.npz").values())
        results[role] = (record["losses"], record["devices"], weights)
    return results


def check_like_one_process(results):
    single_losses, single_devices, single_weights = results["single"]
    assert single_devices == 1 and len(single_losses) == 3
    assert len(set(single_losses)) == 3  # the steps trained
    eps = np.finfo(np.float32).eps
    for role in ("worker0", "worker1"):
        losses, devices, weights = results[role]
        assert devices == 2, (role, devices)
        np.testing.assert_allclose(losses, single_losses, rtol=64 * eps,
                                   err_msg=role)
        for a, b in zip(weights, single_weights):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6,
                                       err_msg=role)
    # both workers hold the same model
    for a, b in zip(results["worker0"][2], results["worker1"][2]):
        np.testing.assert_array_equal(a, b)


# runs once, in the jax backend's run of the suite (its processes
# start their own backend)
@pytest.mark.jax
def test_two_jax_processes_train_alexnet_like_one(tmp_path):
    check_like_one_process(run_processes("jax", JAX, tmp_path))


# runs once, in the tensorflow backend's run of the suite (its processes
# start their own backend)
@pytest.mark.tensorflow
def test_two_tensorflow_workers_train_alexnet_like_one(tmp_path):
    check_like_one_process(run_processes("tensorflow", TENSORFLOW, tmp_path))
