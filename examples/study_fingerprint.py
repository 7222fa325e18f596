"""What each normalization arm of notebook 03 computes, as a fingerprint.

Notebook 03 (`03_does_lrn_matter`) trains one network per arm; the arms
differ only in the layer at the two normalization positions, `NORM_LAYERS`
(the notebook builds its layers from this table). A change to keras-lrn's
kernels can change the bits those layers compute, and training amplifies
any difference, so the study's records hold this fingerprint of the code
that produced them: for every LRN arm, a SHA-256 of the bits of the layer's
output and of its gradients (with respect to the input and every learned
weight) on fixed inputs at the two input scales the notebook uses (raw
pixels, standard deviation about 80, and standardized, 1), computed
eagerly and under XLA (`tf.function(jit_compile=True)`, the path of Keras's
`train_on_batch` on the CPU).

tests/test_study_fingerprint.py recomputes it with the shipped package and
with the package of the commit the records name, on the machine that runs
the tests, and fails, naming the notebook to re-execute, where they differ.

    python examples/study_fingerprint.py   # prints the fingerprint as JSON
"""

import hashlib
import json

import numpy as np

# arm -> the keyword arguments of `LocalResponseNormalization` at norm1 and
# norm2 (the arms `none` and `batchnorm` hold no LRN)
NORM_LAYERS = {
    "lrn_across": dict(),
    "lrn_within_term": dict(size=5, mode="within_channel"),
    "lrn_within_caffe": dict(size=5, alpha=1e-4 / 25, mode="within_channel"),
    # what AlexNet(normalization="learned") puts at its LRN positions
    "lrn_learned": dict(window="exponential", window_scale=2.5,
                        learnable=("alpha", "beta", "bias", "window_scale")),
    "lrn_gain_invariant": dict(size=5, alpha=1.0, beta=0.5, bias=0.01),
}
# norm1's input in the notebook's network: a batch of 16x16 maps, 16 filters
SHAPE = (4, 16, 16, 16)
INPUT_SCALES = {"raw": 80.0, "standardized": 1.0}


def _bits(tensors):
    digest = hashlib.sha256()
    for tensor in tensors:
        array = np.ascontiguousarray(np.asarray(tensor))
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def fingerprint():
    """{arm: {"eager": sha256, "xla": sha256}} of every LRN arm's layer on
    the TensorFlow backend."""
    import tensorflow as tf

    from keras_lrn import LocalResponseNormalization

    rng = np.random.default_rng(2026)
    inputs = {name: (scale * rng.standard_normal(SHAPE)).astype("float32")
              for name, scale in INPUT_SCALES.items()}
    upstream = rng.standard_normal(SHAPE).astype("float32")
    prints = {}
    for arm, arguments in NORM_LAYERS.items():
        layer = LocalResponseNormalization(**arguments)
        layer.build(SHAPE)

        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            gradients = tape.gradient(
                y, [x] + layer.trainable_weights, output_gradients=upstream)
            return [y] + gradients

        compiled = tf.function(step, jit_compile=True)
        prints[arm] = {
            context: _bits([t for x in inputs.values()
                            for t in function(tf.constant(x))])
            for context, function in (("eager", step), ("xla", compiled))}
    return prints


if __name__ == "__main__":
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    print(json.dumps(fingerprint(), indent=1, sort_keys=True))
