"""Shared building blocks for `keras_lrn.applications` (private)."""

import os

import keras

from keras_lrn.applications import zoo
from keras_lrn.layer import LocalResponseNormalization

NORMALIZATIONS = ("lrn", "none", "batchnorm")
GROUP_IMPLEMENTATIONS = ("native", "towers")


def validate_builder(weights, dropout, normalization, group_implementation,
                     pooling, include_top, classes, variant=None,
                     variants=None, zoo_variant=None, network=None):
    """Checks a builder's arguments; returns whether `weights` is a zoo
    `.onnx` file (which only `zoo_variant` of the builder loads)."""
    if variants is not None and variant not in variants:
        raise ValueError(
            f"Unknown `variant`={variant!r}; expected one of {variants}."
        )
    onnx_weights = zoo.is_onnx_path(weights)
    if onnx_weights and variants is not None and variant != zoo_variant:
        raise ValueError(
            f"`weights`={weights!r} is an ONNX file: the model zoo's "
            f"{network} loads with variant={zoo_variant!r}, not "
            f"variant={variant!r}."
        )
    validate_common(None if onnx_weights else weights, normalization,
                    group_implementation, pooling, include_top, classes)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(
            f"`dropout` must be in [0, 1), got dropout={dropout!r}.")
    return onnx_weights


def load_builder_weights(model, weights, classes, onnx_weights, zoo_network):
    """Loads `weights` (a zoo `.onnx` file, a Keras file or None) into
    `model`; returns it."""
    if onnx_weights:
        return zoo.load_zoo_weights(model, weights, zoo_network)
    return load_weights(model, weights, classes)


def validate_common(weights, normalization, group_implementation, pooling,
                    include_top, classes):
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"Unknown `normalization`={normalization!r}; expected one of "
            f"{NORMALIZATIONS}."
        )
    if group_implementation not in GROUP_IMPLEMENTATIONS:
        raise ValueError(
            f"Unknown `group_implementation`={group_implementation!r}; "
            f"expected one of {GROUP_IMPLEMENTATIONS}."
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            f"Unknown `pooling`={pooling!r}; expected None, 'avg' or 'max'."
        )
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"`classes` must be a positive int, got {classes!r}.")
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            f"`weights` must be None or a path to a .keras/.weights.h5 file, "
            f"got {weights!r}."
        )
    path = os.fspath(weights)
    if not (path.endswith(".keras") or path.endswith(".weights.h5")):
        raise ValueError(
            f"`weights`={path!r} is not a path to a '.keras' or "
            "'.weights.h5' file. No pretrained weights are downloaded by "
            "keras_lrn.applications (weights='imagenet' is not available "
            "offline); pass a local file."
        )
    if not os.path.exists(path):
        raise ValueError(f"`weights` file not found: {path!r}.")


def resolve_input(input_shape, input_tensor, default_size, min_size,
                  include_top, weights, name):
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
            f"`input_shape` must have 3 dimensions (H, W, C) or (C, H, W), "
            f"got input_shape={input_shape!r}."
        )
    spatial = input_shape[:2] if data_format == "channels_last" else input_shape[1:]
    for s in spatial:
        if s is not None and s < min_size:
            raise ValueError(
                f"`input_shape`={input_shape!r} is too small for {name}: "
                f"height and width must be at least {min_size}."
            )
    if include_top and any(s is None for s in spatial):
        raise ValueError(
            f"With include_top=True, {name} needs a fixed spatial size; got "
            f"input_shape={input_shape!r}."
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
    """The normalization block used at the LRN positions of the network."""
    if normalization == "lrn":
        return lrn_factory(name=name, data_format=data_format)
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

    def make(f, n):
        return keras.layers.Conv2D(
            f,
            kernel_size,
            strides=strides,
            padding=padding,
            groups=n,
            data_format=data_format,
            kernel_initializer=keras.initializers.RandomNormal(0.0, std),
            bias_initializer=keras.initializers.Constant(bias),
            kernel_regularizer=kernel_regularizer,
            name=name if n == groups else None,
        )

    if groups == 1 or group_implementation == "native":
        x = make(filters, groups)(x)
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
                name=f"{name}_tower{g}",
            )
            outs.append(layer(part))
        x = keras.layers.Concatenate(axis=axis, name=name)(outs)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)


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
    if weights is None:
        return model
    try:
        model.load_weights(os.fspath(weights))
    except ValueError as e:
        raise ValueError(
            f"Could not load `weights`={os.fspath(weights)!r} into "
            f"{model.name} (classes={classes}): {e}. Check that `classes`, "
            "`include_top`, `input_shape`, `variant`, `normalization` and "
            "`group_implementation` match the saved model."
        ) from e
    return model


__all__ = ["LocalResponseNormalization"]
