"""Writes tf.keras 2 `.h5` files whose LRN is a user's custom layer.

Two conventions users wrote before Keras 3 had an LRN layer
(keras_lrn/legacy.py): a layer around `tf.nn.local_response_normalization`
(`depth_radius`, `bias`, `alpha`, `beta`, channels_last) and old Keras's
`LRN2D` (`alpha`, `k`, `beta`, `n`, channels_first, the window summed term by
term as Keras 0.x did). Needs the `tf_keras` package (Keras 2).

`python tests/data/save_legacy_models.py` writes the committed files
legacy_tf_keras2_tensorflow.h5 and legacy_tf_keras2_lrn2d.h5 beside this
script; tests/test_legacy.py also calls `save` to write fresh ones.
"""

import pathlib
import warnings

import numpy as np

# The hyperparameters saved in each file, in the file's own convention.
TENSORFLOW_CONFIG = dict(depth_radius=2, bias=2.0, alpha=1e-3, beta=0.75)
LRN2D_CONFIG = dict(alpha=2e-3, k=1.5, beta=0.5, n=3)
INPUT_SHAPES = {"tensorflow": (6, 6, 3), "lrn2d": (8, 5, 5)}


def save(convention, path):
    """Saves a small tf.keras 2 model whose LRN is in `convention`
    ("tensorflow" or "lrn2d") to `path`; returns the model."""
    import tensorflow as tf
    import tf_keras

    class LocalResponseNormalization(tf_keras.layers.Layer):
        """A user's tf.keras 2 layer in TensorFlow's convention."""

        def __init__(self, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5,
                     **kwargs):
            super().__init__(**kwargs)
            self.depth_radius = depth_radius
            self.bias = bias
            self.alpha = alpha
            self.beta = beta

        def call(self, inputs):
            return tf.nn.local_response_normalization(
                inputs, self.depth_radius, self.bias, self.alpha, self.beta)

        def get_config(self):
            return {**super().get_config(), "depth_radius": self.depth_radius,
                    "bias": self.bias, "alpha": self.alpha, "beta": self.beta}

    class LRN2D(tf_keras.layers.Layer):
        """Old Keras's LRN2D, on channels_first input, as users ported it."""

        def __init__(self, alpha=1e-4, k=2, beta=0.75, n=5, **kwargs):
            if n % 2 == 0:
                raise NotImplementedError("LRN2D only works with odd n.")
            super().__init__(**kwargs)
            self.alpha = alpha
            self.k = k
            self.beta = beta
            self.n = n

        def call(self, inputs):
            half_n = self.n // 2
            channels = inputs.shape[1]
            squares = tf.pad(tf.square(inputs),
                             [[0, 0], [half_n, half_n], [0, 0], [0, 0]])
            scale = self.k
            for i in range(self.n):
                scale += self.alpha * squares[:, i:i + channels]
            return inputs / scale**self.beta

        def get_config(self):
            return {**super().get_config(), "alpha": self.alpha, "k": self.k,
                    "beta": self.beta, "n": self.n}

    tf_keras.utils.set_random_seed(5)
    inputs = tf_keras.Input(INPUT_SHAPES[convention])
    if convention == "tensorflow":
        hidden = tf_keras.layers.Conv2D(8, 3, padding="same")(inputs)
        hidden = LocalResponseNormalization(**TENSORFLOW_CONFIG,
                                            name="norm1")(hidden)
    else:
        hidden = LRN2D(**LRN2D_CONFIG, name="norm1")(inputs)
    outputs = tf_keras.layers.Dense(4)(tf_keras.layers.Flatten()(hidden))
    model = tf_keras.Model(inputs, outputs)
    with warnings.catch_warnings():
        # tf_keras recommends its own format over HDF5: the legacy .h5 file
        # is what this writes on purpose
        warnings.filterwarnings("ignore", "You are saving your model as an HDF5")
        model.save(path, save_format="h5")
    return model


def sample_input(convention, batch=2):
    """The input the tests feed the model saved in `convention`."""
    rng = np.random.default_rng(11)
    return rng.uniform(0, 20, (batch, *INPUT_SHAPES[convention])).astype(
        "float32")


if __name__ == "__main__":
    here = pathlib.Path(__file__).parent
    for name in INPUT_SHAPES:
        save(name, here / f"legacy_tf_keras2_{name}.h5")
