"""GoogLeNet (Szegedy et al., 2014), the ONNX model zoo's inception_v1."""

import keras

from keras_lrn.applications import _common
from keras_lrn.layer import LocalResponseNormalization

DEFAULT_SIZE = 224
MIN_SIZE = 61

# Filters of each inception module: 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5,
# pool projection (Szegedy et al., Table 1).
INCEPTION_MODULES = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)


# The ONNX model zoo's inception_v1 graph: LRN size 5, alpha 1e-4 (divided
# by size: 2e-5 per term), beta 0.75, bias 1.
ZOO_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}


def _zoo_lrn(**kw):
    return LocalResponseNormalization.from_onnx(**ZOO_LRN, **kw)


def GoogLeNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    normalization="lrn",
    dropout=0.4,
    kernel_regularizer=None,
    name="googlenet",
):
    """Instantiates GoogLeNet (Inception v1) as in the ONNX model zoo.

    The architecture of the ONNX model zoo's `inception_v1` (Caffe's
    `bvlc_googlenet` converted to ONNX), without the two auxiliary
    classifiers used only in training: conv1 64 7x7/2 (padded by 3, 112x112),
    3x3/2 max-pool (55x55), Local Response Normalization *after* the pool,
    conv2 64 1x1 and 192 3x3, LRN, 3x3/2 max-pool (27x27), inception
    modules 3a-3b, max-pool (13x13), 4a-4e, max-pool (6x6), 5a-5b, average
    pool, dropout 0.4, classifier. Pools round down as in the zoo graph.
    The graph's last pool is a 7x7 average pool of the 6x6 map padded at
    the bottom and right and excluding the padding, i.e. a global average
    (`GlobalAveragePooling2D` here). LRN takes the graph's ONNX attributes
    (`size=5, alpha=1e-4, beta=0.75, bias=1`, built with
    `LocalResponseNormalization.from_onnx`: per-term alpha 2e-5). With
    1000 classes the model has 6,998,552 parameters.

    Random initialisation is N(0, 0.01) weights and 0.2 biases (not the
    paper's); the builder is meant for the zoo's weights: pass its file as
    `weights` (see `keras_lrn.applications.from_onnx_zoo`). Inputs are BGR,
    0-255, mean subtracted (`keras_lrn.applications.preprocess_input`).

    Reference:
    - [Going Deeper with Convolutions](https://arxiv.org/abs/1409.4842)
        (Szegedy et al., CVPR 2015), Table 1 and Fig. 3.
    - ONNX model zoo, `validated/vision/classification/inception_and_googlenet/googlenet`
        (https://github.com/onnx/models).

    Args:
        include_top: whether to include the average pool, dropout and
            classifier.
        weights: `None`, the path to a local `.keras`/`.weights.h5` file, or
            the path to the ONNX model zoo's `googlenet-{9..12}.onnx`
            (needs `onnx`; read by `keras_lrn.applications.GoogLeNet`,
            which wraps this module's builder with its `ZOO` mapping).
            Nothing is downloaded.
        input_tensor: optional Keras tensor to use as image input.
        input_shape: optional shape tuple, default `(224, 224, 3)`; height
            and width must be at least 61.
        pooling: with `include_top=False`: `None` (4D output), `"avg"` or
            `"max"`.
        classes: number of classes.
        classifier_activation: activation of the output layer or `None`.
        normalization: `"lrn"` (default), `"none"` or `"batchnorm"`, for
            ablations, or `"learned"`: the network's LRN with an exponential window
            of 2.5 channels and alpha, beta, bias and window_scale trainable
            from its values (Miller, Chung & Miller, ICLR 2022).
        dropout: dropout rate before the classifier (0.4).
        kernel_regularizer: optional regularizer for every kernel.
        name: model name.

    Input shape:
        4D tensor `(batch, 224, 224, 3)` (`channels_last`) or
        `(batch, 3, 224, 224)` (`channels_first`), BGR, 0-255, mean
        subtracted.

    Output shape:
        `(batch, classes)` with `include_top=True`; otherwise
        `(batch, 6, 6, 1024)` for a 224x224 input, or `(batch, 1024)` with
        `pooling`.

    Example:

    >>> from keras_lrn.applications import GoogLeNet
    >>> model = GoogLeNet()
    >>> model.get_layer("pool1_norm1").output.shape
    (None, 55, 55, 64)

    Returns:
        A `keras.Model`.
    """
    _common.validate_builder(
        weights, dropout, normalization, "native", pooling,
        classes)
    inputs, img_input, data_format = _common.resolve_input(
        input_shape, input_tensor, DEFAULT_SIZE, MIN_SIZE, include_top,
        "GoogLeNet",
    )
    axis = _common.channel_axis(data_format)

    def conv(x, filters, kernel_size, name, strides=1):
        return _common.conv(x, filters, kernel_size, strides=strides,
                            padding="same" if strides == 1 else "valid",
                            bias=0.2, name=name, data_format=data_format,
                            kernel_regularizer=kernel_regularizer)

    def pool(x, name, strides=2):
        return keras.layers.MaxPooling2D(
            3, strides, padding="same" if strides == 1 else "valid",
            data_format=data_format, name=name)(x)

    def norm(x, name):
        layer = _common.norm_layer(normalization, name, data_format, _zoo_lrn)
        return layer(x) if layer is not None else x

    def inception(x, block, filters):
        f1, f3r, f3, f5r, f5, fp = filters
        prefix = f"inception_{block}_"
        b1 = conv(x, f1, 1, prefix + "1x1")
        b3 = conv(conv(x, f3r, 1, prefix + "3x3_reduce"), f3, 3, prefix + "3x3")
        b5 = conv(conv(x, f5r, 1, prefix + "5x5_reduce"), f5, 5, prefix + "5x5")
        bp = conv(pool(x, prefix + "pool", strides=1), fp, 1, prefix + "pool_proj")
        return keras.layers.Concatenate(axis=axis, name=prefix + "output")(
            [b1, b3, b5, bp])

    x = keras.layers.ZeroPadding2D(3, data_format=data_format,
                                   name="conv1_7x7_s2_pad")(img_input)
    x = conv(x, 64, 7, "conv1_7x7_s2", strides=2)
    x = norm(pool(x, "pool1_3x3_s2"), "pool1_norm1")   # LRN after the pool
    x = conv(x, 64, 1, "conv2_3x3_reduce")
    x = conv(x, 192, 3, "conv2_3x3")
    x = pool(norm(x, "conv2_norm2"), "pool2_3x3_s2")
    for block, filters in INCEPTION_MODULES:
        x = inception(x, block, filters)
        if block in ("3b", "4e"):
            x = pool(x, f"pool{block[0]}_3x3_s2")

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(data_format=data_format,
                                                name="pool5_7x7_s1")(x)
        x = keras.layers.Dropout(dropout, name="pool5_drop_7x7_s1")(x)
        x = _common.classifier(x, classes, classifier_activation, 0.01, 0.0,
                               "loss3_classifier", kernel_regularizer)
    else:
        x = _common.global_pool(x, pooling, data_format)

    model = keras.Model(inputs, x, name=name)
    return _common.load_weights(model, weights, classes)


def _conv(name, filters, channels, kernel, **attributes):
    """A `Conv` node of the zoo graph (the file's weight shape)."""
    return {"name": name, "op": "Conv",
            "weights": (filters, channels, kernel, kernel), **attributes}


def _zoo_layers():
    """The graph's convolutions and classifier, in graph order."""
    layers = [_conv("conv1_7x7_s2", 64, 3, 7, strides=2, pads=3),
              _conv("conv2_3x3_reduce", 64, 64, 1),
              _conv("conv2_3x3", 192, 64, 3, pads=1)]
    channels = 192
    for block, (f1, f3r, f3, f5r, f5, fp) in INCEPTION_MODULES:
        prefix = f"inception_{block}_"
        layers += [_conv(prefix + "1x1", f1, channels, 1),
                   _conv(prefix + "3x3_reduce", f3r, channels, 1),
                   _conv(prefix + "3x3", f3, f3r, 3, pads=1),
                   _conv(prefix + "5x5_reduce", f5r, channels, 1),
                   _conv(prefix + "5x5", f5, f5r, 5, pads=2),
                   _conv(prefix + "pool_proj", fp, channels, 1)]
        channels = f1 + f3 + f5 + fp
    classifier = {"name": "loss3_classifier", "op": "Gemm",
                  "weights": (1000, channels)}
    return tuple(layers) + (classifier,)


def _zoo_pools():
    stride_two = {"op": "MaxPool", "kernel": 3, "strides": 2}
    branch = {"op": "MaxPool", "kernel": 3, "strides": 1, "pads": (1, 1, 1, 1)}
    return (
        (stride_two, stride_two)          # stem: pool1, pool2
        + (branch,) * 2 + (stride_two,)   # 3a, 3b, pool3
        + (branch,) * 5 + (stride_two,)   # 4a-4e, pool4
        + (branch,) * 2                   # 5a, 5b
        # The 7x7 average pool of the 6x6 map, padded on the bottom and
        # right, excluding the padding: a global average.
        + ({"op": "AveragePool", "kernel": 7, "strides": 1,
            "pads": (0, 0, 1, 1)},)
    )


# The ONNX model zoo's inception_v1 (`googlenet-{9..12}.onnx`,
# `inception-v1-{9..12}.onnx`), the graph `GoogLeNet()` is built from, as
# plain data: its weighted layers in graph order with the file's weight
# shapes (ONNX layout), its pools and LRN nodes. `keras_lrn.applications`
# pairs it with `GoogLeNet` (`zoo.with_zoo_weights`).
ZOO = {
    "name": "googlenet",
    "arguments": {},
    "layers": _zoo_layers(),
    "pools": _zoo_pools(),
    "lrn": ZOO_LRN,
    "lrn_count": 2,
}
