"""Model parallel the paper's way: AlexNet's towers on separate devices.

With the channels sharded across devices on group boundaries, grouped LRN
(`groups=`) needs no communication: the compiled program holds no
collective (all-gather, all-reduce, collective-permute, all-to-all,
reduce-scatter), and its result is bit-identical to one device. An
ungrouped LRN on the same sharding needs its neighbours across the boundary,
and its program holds a collective (the check can fail).

Runs JAX on 4 virtual CPU devices (`--xla_force_host_platform_device_count`,
which must be set before JAX starts) in a fresh interpreter: `jax.sharding`
directly, and Keras's `ModelParallel` with a layout map that puts each tower
of a grouped convolution, and its LRN, on its own devices (there the
program's instructions name their layer, and none of the LRN's is a
collective).
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

# runs once, in the jax backend's run of the suite (a JAX subprocess on 4
# virtual devices)
pytestmark = pytest.mark.jax

ROOT = pathlib.Path(__file__).parents[1]
COLLECTIVES = ("all-gather", "all-reduce", "collective-permute", "all-to-all",
               "reduce-scatter")

SCRIPT = r"""
import json, re, sys
import jax, keras, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import keras_lrn

COLLECTIVES = %(collectives)r
assert len(jax.devices()) == 4, jax.devices()
results = {}

def collectives(compiled_text):
    return sorted({name for name in COLLECTIVES
                   if re.search(r"\b" + name + r"(-start)?\(", compiled_text)})

def collectives_by_layer(compiled_text):
    # each instruction's metadata names the Keras layer it comes from:
    # op_name="jit(forward)/<layer>/..."
    found = {}
    for line in compiled_text.splitlines():
        for name in COLLECTIVES:
            if re.search(r"= \S+ " + name + r"(-start)?\(", line):
                layer = re.search(r'op_name="jit\(forward\)/([^/"]+)', line)
                found.setdefault(layer.group(1) if layer else "?",
                                 set()).add(name)
    return {layer: sorted(names) for layer, names in found.items()}

# jax.sharding: batch on one mesh axis, the towers' channels on the other
mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ("batch", "model"))
rng = np.random.default_rng(0)
x = rng.uniform(-10, 10, (4, 5, 5, 96)).astype("float32")
upstream = rng.normal(size=x.shape).astype("float32")
sharding = NamedSharding(mesh, P("batch", None, None, "model"))
for name, groups in (("grouped", 2), ("ungrouped", 1)):
    layer = keras_lrn.LRN(groups=groups, alpha=1e-2)
    layer.build(x.shape)
    def forward_and_gradient(x, upstream):
        y, pullback = jax.vjp(layer, x)
        return y, pullback(upstream)[0]
    sharded = jax.jit(forward_and_gradient, in_shardings=(sharding, sharding),
                      out_shardings=(sharding, sharding))
    compiled = sharded.lower(x, upstream).compile()
    y, dx = compiled(jax.device_put(x, sharding),
                     jax.device_put(upstream, sharding))
    one_y, one_dx = jax.jit(forward_and_gradient)(
        jax.device_put(x, jax.devices()[0]),
        jax.device_put(upstream, jax.devices()[0]))
    results[name] = dict(
        collectives=collectives(compiled.as_text()),
        output_shards=sorted({str(s.device) for s in y.addressable_shards}),
        shard_shape=list(y.addressable_shards[0].data.shape),
        identical=bool(np.array_equal(np.asarray(y), np.asarray(one_y))
                       and np.array_equal(np.asarray(dx), np.asarray(one_dx))),
    )

# Keras's ModelParallel: a grouped convolution's towers and their LRN on
# their own devices (channels on "model"), the batch on "batch"
def tower_model():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((5, 5, 8))
    hidden = keras.layers.Conv2D(96, 3, padding="same", groups=2,
                                 name="conv")(inputs)
    outputs = keras_lrn.LRN(groups=2, alpha=1e-2, name="norm")(hidden)
    return keras.Model(inputs, outputs)

images = rng.uniform(-1, 1, (4, 5, 5, 8)).astype("float32")
single = tower_model()
expected = np.asarray(single(images))
device_mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"],
                                            keras.distribution.list_devices())
layout_map = keras.distribution.LayoutMap(device_mesh)
layout_map["conv/kernel"] = (None, None, None, "model")
layout_map["conv/bias"] = ("model",)
layout_map["conv/output"] = ("batch", None, None, "model")
layout_map["norm/output"] = ("batch", None, None, "model")
keras.distribution.set_distribution(keras.distribution.ModelParallel(
    layout_map=layout_map, batch_dim_name="batch"))
model = tower_model()
model.set_weights(single.get_weights())
kernel = model.get_layer("conv").kernel.value
state = [v.value for v in model.trainable_variables]
data = jax.device_put(images, NamedSharding(
    device_mesh.backend_mesh, P("batch", None, None, None)))
def forward(state, images):
    return model.stateless_call(state, [], images)[0]
compiled = jax.jit(forward).lower(state, data).compile()
y = compiled(state, data)
norm_ops = len(re.findall(r'op_name="jit\(forward\)/norm/',
                          compiled.as_text()))
results["model_parallel"] = dict(
    collectives=collectives_by_layer(compiled.as_text()),
    norm_ops=norm_ops,
    kernel_sharding=str(kernel.sharding.spec),
    output_sharding=str(y.sharding.spec),
    identical=bool(np.array_equal(np.asarray(y), expected)),
)
print("RESULTS " + json.dumps(results))
""" % dict(collectives=COLLECTIVES)


@pytest.fixture(scope="module")
def results():
    try:
        completed = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True,
            cwd=ROOT, timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "jax",
                 "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
                 "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    except subprocess.TimeoutExpired as error:  # run() has killed it
        pytest.fail(f"the 4-device run took over 300 s: {error}")
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = [line for line in completed.stdout.splitlines()
            if line.startswith("RESULTS ")][-1]
    return json.loads(line[len("RESULTS "):])


def test_grouped_lrn_sharded_on_group_boundaries_needs_no_communication(
        results):
    grouped = results["grouped"]
    assert grouped["collectives"] == [], grouped
    # really sharded: 4 devices, each holding half the batch and one tower
    assert len(grouped["output_shards"]) == 4, grouped
    assert grouped["shard_shape"] == [2, 5, 5, 48], grouped
    assert grouped["identical"], grouped  # forward and gradient


def test_ungrouped_lrn_on_the_same_sharding_communicates(results):
    # the windows at channels 46-49 cross the devices' boundary
    ungrouped = results["ungrouped"]
    assert ungrouped["collectives"], ungrouped
    assert ungrouped["identical"], ungrouped


def test_keras_model_parallel_towers_lrn_runs_without_communication(
        results):
    parallel = results["model_parallel"]
    assert "model" in parallel["kernel_sharding"], parallel
    assert parallel["output_sharding"].endswith(
        "('batch', None, None, 'model')"), parallel
    # the program's instructions name their layers, the LRN's among them
    assert parallel["norm_ops"] > 0, parallel
    # none of its collectives is the LRN's (XLA's partitioner gathers the
    # grouped convolution's kernel, which is the convolution's concern)
    assert "norm" not in parallel["collectives"], parallel
    assert set(parallel["collectives"]) <= {"conv"}, parallel
    assert parallel["identical"], parallel
