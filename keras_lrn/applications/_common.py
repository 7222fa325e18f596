"""Shared Keras building blocks of the `keras_lrn.applications` builders.

A leaf: it needs only Keras, so that every builder module can import it;
nothing here imports a builder or the zoo reader.
"""

import os

import keras

NORMALIZATIONS = ("lrn", "none", "batchnorm", "learned")
# normalization="learned": the exponential window's starting scale (see
# `norm_layer`) and the parameters learned.
LEARNED_WINDOW_SCALE = 2.5
LEARNED_PARAMETERS = ["alpha", "beta", "bias", "window_scale"]
GROUP_IMPLEMENTATIONS = ("native", "towers")
POOLINGS = (None, "avg", "max")


def validate_builder(weights, dropout, normalization, group_implementation,
                     pooling, classes, variant=None, variants=None):
    """Checks a builder's arguments (`weights`: None or a local Keras file;
    the package's `__init__` reads model zoo `.onnx` files)."""
    if variants is not None and variant not in variants:
        raise ValueError(
            f"`variant` must be one of {variants}. Received: "
            f"variant={variant!r}"
        )
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"`normalization` must be one of {NORMALIZATIONS}. Received: "
            f"normalization={normalization!r}"
        )
    if group_implementation not in GROUP_IMPLEMENTATIONS:
        raise ValueError(
            f"`group_implementation` must be one of {GROUP_IMPLEMENTATIONS}. "
            f"Received: group_implementation={group_implementation!r}"
        )
    if pooling not in POOLINGS:
        raise ValueError(
            f"`pooling` must be one of {POOLINGS}. Received: "
            f"pooling={pooling!r}"
        )
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(
            f"`classes` must be a positive int. Received: classes={classes!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
    _validate_keras_weights(weights)


def _validate_keras_weights(weights):
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "`weights` must be None or the path to a local .keras, "
            f".weights.h5 or model zoo .onnx file. Received: weights={weights!r}"
        )
    path = os.fspath(weights)
    if path.lower().endswith(".onnx"):
        raise ValueError(
            "`weights` is an ONNX file, which this module's builder does not "
            "read: build with the builder of `keras_lrn.applications` (e.g. "
            "`keras_lrn.applications.AlexNet(variant='bvlc', weights=path)`) "
            "or use `keras_lrn.applications.from_onnx_zoo(path)`. Received: "
            f"weights={path!r}"
        )
    if not (path.endswith(".keras") or path.endswith(".weights.h5")):
        raise ValueError(
            "`weights` must be None or the path to a local '.keras', "
            "'.weights.h5' or model zoo '.onnx' file. keras_lrn.applications "
            "downloads nothing (weights='imagenet' is not available): save or "
            "download the file yourself and pass its path. Received: "
            f"weights={path!r}"
        )
    if not os.path.isfile(path):
        raise ValueError(
            "`weights` names no file: check the path (relative paths start "
            f"at {os.getcwd()!r}). Received: weights={path!r}"
        )


def resolve_input(input_shape, input_tensor, default_size, min_size,
                  include_top, name):
    data_format = keras.config.image_data_format()
    if data_format == "channels_last":
        default_shape = (default_size, default_size, 3)
    else:
        default_shape = (3, default_size, default_size)
    if input_shape is None:
        if input_tensor is not None:
            input_shape = tuple(input_tensor.shape[1:])
        else:
            input_shape = default_shape
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            "`input_shape` must have 3 dimensions, (H, W, C) or (C, H, W). "
            f"Received: input_shape={input_shape!r}"
        )
    spatial = input_shape[:2] if data_format == "channels_last" else input_shape[1:]
    for s in spatial:
        if s is not None and s < min_size:
            raise ValueError(
                f"`input_shape` is too small for {name}: height and width "
                f"must be at least {min_size}. Received: "
                f"input_shape={input_shape!r}"
            )
    if include_top and any(s is None for s in spatial):
        raise ValueError(
            f"With include_top=True, {name} needs a fixed height and width. "
            f"Received: input_shape={input_shape!r}"
        )
    if input_tensor is None:
        inputs = keras.Input(shape=input_shape)
        img_input = inputs
    else:
        if not keras.backend.is_keras_tensor(input_tensor):
            img_input = keras.Input(tensor=input_tensor, shape=input_shape)
        else:
            img_input = input_tensor
        inputs = keras.utils.get_source_inputs(input_tensor)
    return inputs, img_input, data_format


def channel_axis(data_format):
    return -1 if data_format == "channels_last" else 1


def norm_layer(normalization, name, data_format, lrn_factory):
    """The normalization block used at the LRN positions of the network.

    "lrn" is the network's own LRN (`lrn_factory`); "learned" is that LRN
    (its alpha, beta, bias) with the exponential window of Miller, Chung &
    Miller (ICLR 2022) and all four parameters learned: window_scale 2.5
    starts the window's total weight (coth(1 / 5) = 5.07) at the box's 5
    channels; "batchnorm" is `BatchNormalization` (Keras's defaults);
    "none" is no layer (`None`).
    """
    if normalization in ("lrn", "learned"):
        layer = lrn_factory(name=name, data_format=data_format)
        if normalization == "lrn":
            return layer
        config = layer.get_config()
        config.update(window="exponential",
                      window_scale=LEARNED_WINDOW_SCALE,
                      learnable=list(LEARNED_PARAMETERS))
        return type(layer).from_config(config)
    if normalization == "batchnorm":
        return keras.layers.BatchNormalization(
            axis=channel_axis(data_format), name=name.replace("norm", "bn")
        )
    return None


def conv(x, filters, kernel_size, strides=1, padding="valid", groups=1,
         bias=0.0, std=0.01, name=None, data_format="channels_last",
         group_implementation="native", kernel_regularizer=None):
    """Conv2D + ReLU with Gaussian(0, std) weights and constant bias.

    `groups > 1` is built either with `Conv2D(groups=...)` ("native") or as
    explicit towers (split, one conv per group, concatenate) ("towers").
    Both have the same parameters and compute the same function.
    """

    if groups == 1 or group_implementation == "native":
        x = keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            groups=groups,
            data_format=data_format,
            kernel_initializer=keras.initializers.RandomNormal(0.0, std),
            bias_initializer=keras.initializers.Constant(bias),
            kernel_regularizer=kernel_regularizer,
            name=name,
        )(x)
    else:
        axis = channel_axis(data_format)
        cin = x.shape[axis]
        step = cin // groups
        outs = []
        for g in range(groups):
            part = ChannelSlice(
                g * step, (g + 1) * step, axis=axis, name=f"{name}_split{g}"
            )(x)
            layer = keras.layers.Conv2D(
                filters // groups,
                kernel_size,
                strides=strides,
                padding=padding,
                data_format=data_format,
                kernel_initializer=keras.initializers.RandomNormal(0.0, std),
                bias_initializer=keras.initializers.Constant(bias),
                kernel_regularizer=kernel_regularizer,
                name=tower_name(name, g),
            )
            outs.append(layer(part))
        x = keras.layers.Concatenate(axis=axis, name=name)(outs)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


def tower_name(name, group):
    """The name of the explicit tower `group` of the grouped conv `name`."""
    return f"{name}_tower{group}"


def weight_layers(model, name):
    """The layers of `model` holding the weights `conv`/`dense` built as
    `name`: `[layer]`, its towers (`group_implementation="towers"`), or
    `[]` where the model has no such layer (a headless model's top)."""
    layers = {layer.name: layer for layer in model.layers}
    if name in layers and layers[name].weights:
        return [layers[name]]
    towers = []  # `name` is then their Concatenate, or absent
    while tower_name(name, len(towers)) in layers:
        towers.append(layers[tower_name(name, len(towers))])
    return towers


@keras.saving.register_keras_serializable(package="keras_lrn")
class ChannelSlice(keras.layers.Layer):
    """Takes channels `[start, stop)` along `axis` (one tower's input)."""

    def __init__(self, start, stop, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop, self.axis = int(start), int(stop), int(axis)

    def call(self, inputs):
        if self.axis == -1:
            return inputs[..., self.start:self.stop]
        return inputs[:, self.start:self.stop]

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self.axis] = self.stop - self.start
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(start=self.start, stop=self.stop, axis=self.axis)
        return config


def dense(x, units, bias, std, name, kernel_regularizer=None, relu=True):
    x = keras.layers.Dense(
        units,
        kernel_initializer=keras.initializers.RandomNormal(0.0, std),
        bias_initializer=keras.initializers.Constant(bias),
        kernel_regularizer=kernel_regularizer,
        name=name,
    )(x)
    if relu:
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def classifier(x, classes, classifier_activation, std, bias, name,
               kernel_regularizer=None):
    x = keras.layers.Dense(
        classes,
        kernel_initializer=keras.initializers.RandomNormal(0.0, std),
        bias_initializer=keras.initializers.Constant(bias),
        kernel_regularizer=kernel_regularizer,
        name=name,
    )(x)
    if classifier_activation is not None:
        # float32 output keeps the softmax stable under mixed precision.
        x = keras.layers.Activation(
            classifier_activation, dtype="float32", name="predictions"
        )(x)
    return x


def global_pool(x, pooling, data_format):
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(data_format=data_format, name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(data_format=data_format, name="max_pool")(x)
    return x


def load_weights(model, weights, classes):
    """Loads the local Keras file `weights` (or nothing for None) into `model`."""
    if weights is None:
        return model
    try:
        model.load_weights(os.fspath(weights))
    except ValueError as e:
        raise ValueError(
            f"Could not load the weights file into {model.name} (classes="
            f"{classes}): {e} Build the model with the `classes`, "
            "`include_top`, `input_shape`, `variant`, `normalization` and "
            "`group_implementation` the file was saved with. Received: "
            f"weights={os.fspath(weights)!r}"
        ) from e
    return model
