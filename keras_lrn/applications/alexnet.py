"""AlexNet (Krizhevsky, Sutskever & Hinton, 2012) with Local Response Normalization."""

import keras

from keras_lrn.applications import _common
from keras_lrn.layer import LocalResponseNormalization

VARIANTS = ("original", "caffenet", "bvlc")

# The ONNX model zoo's bvlc_alexnet graph: LRN size 5, alpha 1e-4 (divided
# by size: 2e-5 per term), beta 0.75, bias 1.
ZOO_LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 1.0}

# LRN settings per variant.  The published numbers disagree:
#   * AlexNet paper (Sec. 3.3): k=2, n=5, alpha=1e-4 *per term*, beta=0.75.
#   * Caffe bvlc_alexnet / bvlc_reference_caffenet: local_size=5,
#     alpha=1e-4, beta=0.75, k=1, where Caffe divides alpha by n
#     (effective per-term alpha 2e-5).
#   * cuda-convnet2 layer configs (e.g. layers-imagenet-1gpu.cfg):
#     size=5, scale=0.0001 (divided by size), pow=0.75, minDiv=2.
# The original normalizes within each GPU tower (groups=2), as cuda-convnet2's
# layers/layers-imagenet-2gpu-model.cfg does with one cmrnorm layer per tower
# ([rnorm1a]/[rnorm1b]: channels=48, [rnorm2a]/[rnorm2b]: channels=128).
_LRN_FACTORIES = {
    "original": lambda **kw: LocalResponseNormalization(
        size=5, alpha=1e-4, beta=0.75, bias=2.0, mode="across_channels",
        groups=2, **kw
    ),
    "caffenet": lambda **kw: LocalResponseNormalization.from_caffe(
        local_size=5, alpha=1e-4, beta=0.75, k=1.0,
        norm_region="ACROSS_CHANNELS", **kw
    ),
    "bvlc": lambda **kw: LocalResponseNormalization.from_onnx(
        **ZOO_LRN, **kw
    ),
}



DEFAULT_SIZE = 227
ZOO_SIZE = 224
MIN_SIZE = 67


def AlexNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    variant="original",
    normalization="lrn",
    group_implementation="native",
    dropout=0.5,
    kernel_regularizer=None,
    name=None,
):
    """Instantiates the AlexNet architecture (ImageNet 2012 winner).

    `variant="original"` is the network of the 2012 paper as trained on two
    GPUs: 227x227x3 input (the paper says 224, but only 227 gives its
    55x55 conv1 maps), conv1 96 11x11/4, conv2 256 5x5 (grouped in two),
    conv3 384 3x3, conv4 384 3x3 (grouped), conv5 256 3x3 (grouped), fc6
    4096, fc7 4096, fc8 `classes`. Local Response Normalization and an
    overlapping 3x3/2 max-pool follow the ReLUs of conv1 and conv2 (norm
    then pool), a 3x3/2 max-pool follows conv5, dropout 0.5 precedes fc7
    and fc8. Weights are drawn from N(0, 0.01); biases are 1 in conv2,
    conv4, conv5, fc6 and fc7 and 0 elsewhere. With 1000 classes the model
    has exactly 60,965,224 parameters.

    LRN uses the paper's hyperparameters: a window of n=5 channels,
    k=2, alpha=1e-4 applied *per term* of the sum, beta=0.75, i.e.
    `b = a / (2 + 1e-4 * sum(a**2)) ** 0.75`, within each GPU tower
    (`groups=2`): the two-GPU network normalized the 48 + 48 maps of conv1
    and the 128 + 128 of conv2 with one layer per tower, so no window
    crosses from one tower's channels into the other's (channels 47 and 48,
    127 and 128). cuda-convnet2's two-GPU layer definition,
    `layers/layers-imagenet-2gpu-model.cfg`, holds `[rnorm1a]`
    (`type=cmrnorm, inputs=conv1a, channels=48, size=5`), `[rnorm1b]`
    (`inputs=conv1b`), and `[rnorm2a]`/`[rnorm2b]` with `channels=128`.
    The Caffe and zoo variants normalize across all channels, as their
    definitions do. (Before keras-lrn 0.2 the original normalized across
    all channels too.)

    `variant="caffenet"` is Caffe's `bvlc_reference_caffenet` ordering:
    max-pool *before* normalization, and Caffe's LRN settings
    (`local_size=5, alpha=1e-4, beta=0.75, k=1`, where Caffe divides alpha
    by n: per-term alpha 2e-5), built with
    `LocalResponseNormalization.from_caffe`. Its parameter count is the
    same; initialisation follows the paper for both variants.

    `variant="bvlc"` is the ONNX model zoo's `bvlc_alexnet` (Caffe's
    `bvlc_alexnet` converted to ONNX), the architecture of its pretrained
    ImageNet weights: 224x224x3 input (conv1 gives 54x54), norm then pool
    as in the paper, LRN from the graph's ONNX attributes (`size=5,
    alpha=1e-4, beta=0.75, bias=1`, built with
    `LocalResponseNormalization.from_onnx`: per-term alpha 2e-5), and a
    last max-pool padded by one row and column at the bottom and right
    (13x13 -> 6x6). Pass the zoo's file as `weights` to load its weights
    (see `keras_lrn.applications.from_onnx_zoo`); inputs are BGR, 0-255,
    mean subtracted (`keras_lrn.applications.preprocess_input`).

    The published LRN numbers disagree: the paper uses k=2 and alpha=1e-4
    per term; Caffe's `bvlc_alexnet`/`bvlc_reference_caffenet` use k=1 and
    alpha=1e-4/n (2e-5 per term); cuda-convnet2's layer configs use
    `minDiv=2` and `scale=1e-4` divided by the window size. This builder
    defaults to the paper.

    Grouped convolutions are built with `Conv2D(groups=2)` by default
    (`group_implementation="native"`); `group_implementation="towers"`
    builds the two GPU towers explicitly (split channels, one conv per
    half, concatenate). Both compute the same function with the same
    parameter count; "towers" is the fallback for backends/releases where
    grouped convolutions fail (e.g. tensorflow/tensorflow#29005).

    Reference:
    - [ImageNet Classification with Deep Convolutional Neural Networks](
        https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks)
        (Krizhevsky, Sutskever & Hinton, NIPS 2012), Sec. 3.3-3.5, 5.
    - Caffe model zoo, `models/bvlc_reference_caffenet/train_val.prototxt`
        (https://github.com/BVLC/caffe).
    - cuda-convnet2 layer definitions
        (https://github.com/akrizhevsky/cuda-convnet2): the two-GPU model
        `layers/layers-imagenet-2gpu-model.cfg` (one `cmrnorm` layer per
        tower) and its `layers/layer-params-imagenet-2gpu-model.cfg`.

    Args:
        include_top: whether to include the fully-connected layers fc6-fc8.
        weights: `None` (random initialisation as in the paper), the path
            to a local `.keras` or `.weights.h5` file to load, or, with
            `variant="bvlc"`, the path to the ONNX model zoo's
            `bvlcalexnet-{9..12}.onnx` (needs `onnx`; read by
            `keras_lrn.applications.AlexNet`, which wraps this module's
            builder with its `ZOO` mapping). Nothing is downloaded.
        input_tensor: optional Keras tensor to use as image input.
        input_shape: optional shape tuple; defaults to `(227, 227, 3)`
            (`(3, 227, 227)` for `channels_first`), `(224, 224, 3)` for
            `variant="bvlc"`. Height and width must
            be at least 67. Other sizes change the size of fc6.
        pooling: with `include_top=False`, `None` (4D output), `"avg"` or
            `"max"` (global pooling, 2D output).
        classes: number of classes of the classifier (`include_top=True`).
        classifier_activation: activation of the output layer, or `None`
            to return logits.
        variant: `"original"` (the paper), `"caffenet"` (Caffe's
            reference model: pool before norm, Caffe LRN settings) or
            `"bvlc"` (the ONNX model zoo's bvlc_alexnet).
        normalization: `"lrn"` (default), `"none"` (normalization layers
            removed), `"batchnorm"` (`BatchNormalization` at the same
            positions), for ablations, or `"learned"`: learned LRN (Miller,
            Chung & Miller, ICLR 2022) at the same two positions (after
            conv1 and conv2; the paper normalizes after all five convs),
            with an exponential window of 2.5 channels and alpha, beta,
            bias and window_scale trainable from the variant's values
            (and its groups: per tower in the original).
        group_implementation: `"native"` (`Conv2D(groups=2)`) or
            `"towers"` (explicit split/conv/concatenate).
        dropout: dropout rate before fc7 and fc8 (paper: 0.5).
        kernel_regularizer: optional regularizer for every kernel, e.g.
            `keras.regularizers.L2(2.5e-4)` reproduces the paper's weight
            decay of 5e-4 (Keras' L2 adds `l2 * sum(w**2)` to the loss).
        name: model name; defaults to `"alexnet"` / `"caffenet"` /
            `"bvlc_alexnet"`.

    Input shape:
        4D tensor `(batch, 227, 227, 3)` (`channels_last`) or
        `(batch, 3, 227, 227)` (`channels_first`), float pixels.
        No preprocessing is built in: subtract the mean (and optionally
        scale) yourself.

    Output shape:
        `(batch, classes)` with `include_top=True`; otherwise
        `(batch, 6, 6, 256)` for a 227x227 input, or `(batch, 256)` with
        `pooling`.

    Example:

    >>> from keras_lrn.applications import AlexNet
    >>> model = AlexNet()                      # the 2012 network
    >>> model.count_params()
    60965224
    >>> small = AlexNet(input_shape=(99, 99, 3), classes=10,
    ...                 normalization="batchnorm")

    Returns:
        A `keras.Model`.
    """
    _common.validate_builder(
        weights, dropout, normalization, group_implementation, pooling,
        classes, variant=variant, variants=VARIANTS,
    )
    if name is None:
        name = {"original": "alexnet", "caffenet": "caffenet",
                "bvlc": "bvlc_alexnet"}[variant]

    inputs, img_input, data_format = _common.resolve_input(
        input_shape, input_tensor,
        ZOO_SIZE if variant == "bvlc" else DEFAULT_SIZE, MIN_SIZE,
        include_top, "AlexNet",
    )
    lrn_factory = _LRN_FACTORIES[variant]
    norm_first = variant != "caffenet"
    common = dict(data_format=data_format,
                  group_implementation=group_implementation,
                  kernel_regularizer=kernel_regularizer)

    def pool(x, name):
        return keras.layers.MaxPooling2D(3, 2, data_format=data_format,
                                         name=name)(x)

    def norm_pool(x, idx):
        norm = _common.norm_layer(normalization, f"norm{idx}", data_format,
                                  lrn_factory)
        if norm_first:
            if norm is not None:
                x = norm(x)
            return pool(x, f"pool{idx}")
        x = pool(x, f"pool{idx}")
        return norm(x) if norm is not None else x

    x = _common.conv(img_input, 96, 11, strides=4, bias=0.0, name="conv1", **common)
    x = norm_pool(x, 1)
    x = _common.conv(x, 256, 5, padding="same", groups=2, bias=1.0, name="conv2", **common)
    x = norm_pool(x, 2)
    x = _common.conv(x, 384, 3, padding="same", bias=0.0, name="conv3", **common)
    x = _common.conv(x, 384, 3, padding="same", groups=2, bias=1.0, name="conv4", **common)
    x = _common.conv(x, 256, 3, padding="same", groups=2, bias=1.0, name="conv5", **common)
    if variant == "bvlc":  # the zoo graph pads bottom/right: 13x13 -> 6x6
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), data_format=data_format,
                                       name="pool5_pad")(x)
    x = pool(x, "pool5")

    if include_top:
        x = keras.layers.Flatten(data_format=data_format, name="flatten")(x)
        x = _common.dense(x, 4096, 1.0, 0.01, "fc6", kernel_regularizer)
        x = keras.layers.Dropout(dropout, name="drop6")(x)
        x = _common.dense(x, 4096, 1.0, 0.01, "fc7", kernel_regularizer)
        x = keras.layers.Dropout(dropout, name="drop7")(x)
        x = _common.classifier(x, classes, classifier_activation, 0.01, 0.0,
                               "fc8", kernel_regularizer)
    else:
        x = _common.global_pool(x, pooling, data_format)

    model = keras.Model(inputs, x, name=name)
    return _common.load_weights(model, weights, classes)


# The ONNX model zoo's bvlc_alexnet (`bvlcalexnet-{9..12}.onnx`), the graph
# `variant="bvlc"` is built from, as plain data: its weighted layers in graph
# order with the file's weight shapes (ONNX layout), its pools and LRN nodes.
# `keras_lrn.applications` pairs it with `AlexNet` (`zoo.with_zoo_weights`).
ZOO = {
    "name": "bvlc_alexnet",
    "arguments": {"variant": "bvlc"},
    "layers": (
        {"name": "conv1", "op": "Conv", "weights": (96, 3, 11, 11), "strides": 4},
        {"name": "conv2", "op": "Conv", "weights": (256, 48, 5, 5), "pads": 2,
         "group": 2},
        {"name": "conv3", "op": "Conv", "weights": (384, 256, 3, 3), "pads": 1},
        {"name": "conv4", "op": "Conv", "weights": (384, 192, 3, 3), "pads": 1,
         "group": 2},
        {"name": "conv5", "op": "Conv", "weights": (256, 192, 3, 3), "pads": 1,
         "group": 2},
        {"name": "fc6", "op": "Gemm", "weights": (4096, 256 * 6 * 6),
         "flattened_from": (256, 6, 6)},
        {"name": "fc7", "op": "Gemm", "weights": (4096, 4096)},
        {"name": "fc8", "op": "Gemm", "weights": (1000, 4096)},
    ),
    "pools": (
        {"op": "MaxPool", "kernel": 3, "strides": 2},
        {"op": "MaxPool", "kernel": 3, "strides": 2},
        # pads bottom and right: 13x13 -> 6x6 (`pool5_pad`)
        {"op": "MaxPool", "kernel": 3, "strides": 2, "pads": (0, 0, 1, 1)},
    ),
    "lrn": ZOO_LRN,
    "lrn_count": 2,
}
