"""ZFNet (Zeiler & Fergus, 2013) with Local Response Normalization."""

import keras

from keras_lrn.applications import _common
from keras_lrn.layer import LocalResponseNormalization

VARIANTS = ("paper", "zfnet512")
DEFAULT_SIZE = 224
MIN_SIZE = {"paper": 53, "zfnet512": 59}


def _paper_lrn(**kw):
    # The paper only says "contrast normalized across feature maps"; we use
    # the AlexNet paper's LRN hyperparameters (n=5, k=2, alpha=1e-4, beta=0.75).
    return LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, bias=2.0,
                                      mode="across_channels", **kw)


# The ONNX model zoo's zfnet512 graph: LRN size 5, alpha 5e-4 (divided by
# size: 1e-4 per term), beta 0.75, bias 2.
ZOO_LRN = {"size": 5, "alpha": 5e-4, "beta": 0.75, "bias": 2.0}


def _zfnet512_lrn(**kw):
    return LocalResponseNormalization.from_onnx(**ZOO_LRN, **kw)


def ZFNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    variant="paper",
    normalization="lrn",
    dropout=0.5,
    kernel_regularizer=None,
    name=None,
):
    """Instantiates ZFNet, the network of Zeiler & Fergus (2013), Fig. 3.

    224x224x3 input; conv1 96 7x7/2 (110x110), 3x3/2 max-pool (55x55),
    normalization; conv2 256 5x5/2 (26x26), 3x3/2 max-pool (13x13),
    normalization; conv3 384, conv4 384, conv5 256, all 3x3 (13x13);
    3x3/2 max-pool (6x6x256); fc6 4096, fc7 4096 (dropout 0.5), fc8
    `classes`. Unlike AlexNet, no layer is grouped ("dense connections").
    Each block is conv -> ReLU -> max-pool -> normalization, as in the
    paper. Pools 1 and 2 round up (Caffe/cuda-convnet "ceil" mode) as needed
    to reproduce the paper's 55x55 and 13x13 maps; conv1, conv3-conv5 are
    padded by 1. Weights are N(0, 0.01), biases 0 (Sec. 3). With 1000
    classes the model has 62,357,608 parameters.

    The paper's "contrast normalization across feature maps" gives no
    hyperparameters; this builder uses the AlexNet paper's LRN
    (n=5, k=2, alpha=1e-4 per term, beta=0.75). The paper's renormalisation
    of conv filters whose RMS exceeds 0.1 is a training-time procedure and
    is not part of the model.

    `variant="zfnet512"` is the ONNX model zoo's ZFNet-512 (from Caffe2's
    model zoo), the architecture of its pretrained ImageNet weights, which
    differs from the paper: no padding in conv1 and conv2 (224 -> 109 ->
    pool 54 -> 25 -> pool 12), conv3-conv5 with 512 filters, normalization
    *before* each of the first two pools, a 2x2/2 last pool (6x6x512), fc7
    with 1024 units, and LRN with the graph's ONNX attributes (`size=5,
    alpha=5e-4, beta=0.75, bias=2`, built with
    `LocalResponseNormalization.from_onnx`: per-term alpha 1e-4). Pass the
    zoo's file as `weights` to load its weights (see
    `keras_lrn.applications.from_onnx_zoo`); inputs are BGR, 0-255, mean
    subtracted (`keras_lrn.applications.preprocess_input`).

    Reference:
    - [Visualizing and Understanding Convolutional Networks](
        https://arxiv.org/abs/1311.2901) (Zeiler & Fergus, ECCV 2014;
        arXiv 2013), Fig. 3 and Sec. 3.

    Args:
        include_top: whether to include fc6-fc8.
        weights: `None`, the path to a local `.keras`/`.weights.h5` file,
            or, with `variant="zfnet512"`, the path to the ONNX model zoo's
            `zfnet512-{9..12}.onnx` (needs `onnx`; read by
            `keras_lrn.applications.ZFNet`, which wraps this module's
            builder with its `ZOO` mapping).
        input_tensor: optional Keras tensor to use as image input.
        input_shape: optional shape tuple, default `(224, 224, 3)`; height
            and width must be at least 53 (59 for `variant="zfnet512"`).
        pooling: with `include_top=False`: `None`, `"avg"` or `"max"`.
        classes: number of classes.
        classifier_activation: activation of the output layer or `None`.
        variant: `"paper"` (Zeiler & Fergus, Fig. 3) or `"zfnet512"` (the
            ONNX model zoo's ZFNet-512).
        normalization: `"lrn"` (default), `"none"`, `"batchnorm"` or
            `"learned"`: the network's LRN with an exponential window
            of 2.5 channels and alpha, beta, bias and window_scale trainable
            from its values (Miller, Chung & Miller, ICLR 2022).
        dropout: dropout rate before fc7 and fc8 (paper: 0.5).
        kernel_regularizer: optional regularizer for every kernel.
        name: model name; defaults to `"zfnet"` / `"zfnet512"`.

    Input shape:
        4D tensor `(batch, 224, 224, 3)` (`channels_last`) or
        `(batch, 3, 224, 224)` (`channels_first`).

    Output shape:
        `(batch, classes)` with `include_top=True`; otherwise
        `(batch, 6, 6, 256)` for a 224x224 input, or `(batch, 256)` with
        `pooling`.

    Example:

    >>> from keras_lrn.applications import ZFNet
    >>> model = ZFNet(classes=1000)
    >>> model.get_layer("pool2").output.shape
    (None, 13, 13, 256)

    Returns:
        A `keras.Model`.
    """
    _common.validate_builder(
        weights, dropout, normalization, "native", pooling,
        classes, variant=variant, variants=VARIANTS,
    )
    inputs, img_input, data_format = _common.resolve_input(
        input_shape, input_tensor, DEFAULT_SIZE, MIN_SIZE[variant],
        include_top, "ZFNet",
    )
    if name is None:
        name = "zfnet" if variant == "paper" else "zfnet512"
    common = dict(data_format=data_format, kernel_regularizer=kernel_regularizer)

    def pool(x, name, padding):
        return keras.layers.MaxPooling2D(3, 2, padding=padding,
                                         data_format=data_format, name=name)(x)

    def norm(x, idx):
        layer = _common.norm_layer(normalization, f"norm{idx}", data_format,
                                   _paper_lrn if variant == "paper" else _zfnet512_lrn)
        return layer(x) if layer is not None else x

    if variant == "zfnet512":
        x = _common.conv(img_input, 96, 7, strides=2, name="conv1", **common)
        x = pool(norm(x, 1), "pool1", "valid")
        x = _common.conv(x, 256, 5, strides=2, name="conv2", **common)
        x = pool(norm(x, 2), "pool2", "valid")
        for idx in (3, 4, 5):
            x = _common.conv(x, 512, 3, padding="same", name=f"conv{idx}", **common)
        x = keras.layers.MaxPooling2D(2, 2, data_format=data_format, name="pool5")(x)
    else:
        x = keras.layers.ZeroPadding2D(1, data_format=data_format, name="conv1_pad")(img_input)
        x = _common.conv(x, 96, 7, strides=2, name="conv1", **common)
        x = pool(x, "pool1", "same")
        x = norm(x, 1)
        x = _common.conv(x, 256, 5, strides=2, name="conv2", **common)
        x = pool(x, "pool2", "same")
        x = norm(x, 2)
        x = _common.conv(x, 384, 3, padding="same", name="conv3", **common)
        x = _common.conv(x, 384, 3, padding="same", name="conv4", **common)
        x = _common.conv(x, 256, 3, padding="same", name="conv5", **common)
        x = pool(x, "pool5", "valid")

    if include_top:
        x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
        x = _common.dense(x, 4096, 0.0, 0.01, "fc6", kernel_regularizer)
        x = keras.layers.Dropout(dropout, name="drop6")(x)
        x = _common.dense(x, 4096 if variant == "paper" else 1024, 0.0, 0.01,
                          "fc7", kernel_regularizer)
        x = keras.layers.Dropout(dropout, name="drop7")(x)
        x = _common.classifier(x, classes, classifier_activation, 0.01, 0.0,
                               "fc8", kernel_regularizer)
    else:
        x = _common.global_pool(x, pooling, data_format)

    model = keras.Model(inputs, x, name=name)
    return _common.load_weights(model, weights, classes)


# The ONNX model zoo's ZFNet-512 (`zfnet512-{9..12}.onnx`), the graph
# `variant="zfnet512"` is built from, as plain data: its weighted layers in
# graph order with the file's weight shapes (ONNX layout), its pools and LRN
# nodes. `keras_lrn.applications` pairs it with `ZFNet`
# (`zoo.with_zoo_weights`).
ZOO = {
    "name": "zfnet512",
    "arguments": {"variant": "zfnet512"},
    "layers": (
        {"name": "conv1", "op": "Conv", "weights": (96, 3, 7, 7), "strides": 2},
        {"name": "conv2", "op": "Conv", "weights": (256, 96, 5, 5), "strides": 2},
        {"name": "conv3", "op": "Conv", "weights": (512, 256, 3, 3), "pads": 1},
        {"name": "conv4", "op": "Conv", "weights": (512, 512, 3, 3), "pads": 1},
        {"name": "conv5", "op": "Conv", "weights": (512, 512, 3, 3), "pads": 1},
        {"name": "fc6", "op": "Gemm", "weights": (4096, 512 * 6 * 6),
         "flattened_from": (512, 6, 6)},
        {"name": "fc7", "op": "Gemm", "weights": (1024, 4096)},
        {"name": "fc8", "op": "Gemm", "weights": (1000, 1024)},
    ),
    "pools": (
        {"op": "MaxPool", "kernel": 3, "strides": 2},
        {"op": "MaxPool", "kernel": 3, "strides": 2},
        {"op": "MaxPool", "kernel": 2, "strides": 2},
    ),
    "lrn": ZOO_LRN,
    "lrn_count": 2,
}
