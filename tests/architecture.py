"""Independent helpers for the networks' tests (tests/test_alexnet.py,
test_zfnet.py, test_googlenet.py, test_applications.py): parameter counts
recomputed from the papers' layer tables, and a model's wiring read from its
graph. Nothing here calls keras_lrn."""

import contextlib

import keras
import numpy as np


def conv_params(k, cin, cout, groups=1):
    """A k x k convolution from `cin` to `cout` channels (in `groups`
    groups), with a bias per output channel."""
    return k * k * (cin // groups) * cout + cout


def dense_params(n_in, n_out):
    return n_in * n_out + n_out


def upstream(model, layer_name):
    """Name of the layer feeding `layer_name`."""
    node = model.get_layer(layer_name)._inbound_nodes[0]
    return node.input_tensors[0]._keras_history.operation.name


def layers_of_type(model, cls):
    return [layer for layer in model.layers if isinstance(layer, cls)]


def feature_maps(channels=96, seed=1):
    """Seeded non-negative activations, (2, 5, 5, channels) float32, large
    enough (up to 40) that LRN changes them."""
    rng = np.random.default_rng(seed)
    return (rng.random((2, 5, 5, channels)) * 40).astype("float32")


@contextlib.contextmanager
def image_data_format(data_format):
    """Keras's `image_data_format` set to `data_format` for the block (the
    builders' default layout)."""
    old = keras.config.image_data_format()
    keras.config.set_image_data_format(data_format)
    try:
        yield
    finally:
        keras.config.set_image_data_format(old)
