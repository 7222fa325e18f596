"""The `LocalResponseNormalization` Keras layer."""

import keras

from keras_lrn import conventions
from keras_lrn import learnable as learnable_lrn
from keras_lrn import ops as lrn_ops


@keras.saving.register_keras_serializable(package="keras_lrn")
class LocalResponseNormalization(keras.layers.Layer):
    """Local Response Normalization (Krizhevsky et al., 2012).

    Divides each activation by a power of the energy of its neighbours:

    ```
    y = x / (bias + alpha * sum(x[c'] ** 2 for c' in window(c))) ** beta
    ```

    with zero padding outside the tensor. In mode "across_channels" the
    window holds `size` neighbouring channels at the same position (AlexNet's
    LRN, `tf.nn.local_response_normalization`); in mode "within_channel" it
    holds `size` positions along every spatial axis of the same channel (a
    `size x size` box on images: Caffe's WITHIN_CHANNEL).

    The defaults are AlexNet's published hyperparameters (section 3.3 of the
    paper: n=5, alpha=1e-4, beta=0.75, k=2), so `LocalResponseNormalization()`
    is AlexNet's LRN. `alpha` multiplies each squared term, as in the paper
    and TensorFlow. Caffe, PyTorch and ONNX divide their alpha by the window
    and TensorFlow names the window by its radius: build the layer from their
    hyperparameters with `from_caffe`, `from_torch`, `from_onnx` or
    `from_tensorflow`, and get theirs back with `to_caffe()` and siblings.

    The layer computes in its dtype policy's compute dtype; half-precision
    (float16, bfloat16) values are accumulated in float32 and rounded once,
    so activations whose squares overflow float16 still normalize correctly.
    When the layer is built, `alpha`, `beta` and `bias` are checked against
    the compute dtype (float32 for half precision): `bias` a normal number
    of it, `alpha` 0 or a normal number, `bias ** -beta` at most half its
    largest number and `2 * alpha * beta` (the gradient's factor) finite;
    otherwise a `ValueError` names the argument. No accepted
    configuration turns a finite input into NaN. Results follow the formula
    while every square and `alpha` times each window's sum are finite in
    the compute dtype (`|x|` below 1.8e19 in float32 and bfloat16, 1.3e154
    in float64); beyond that the output is 0.

    Any `size` costs at most what the input holds: a window wider than an
    axis is clamped to it, which changes no result (see
    `keras_lrn.ops.local_response_normalization`). Integer arguments take
    Python or NumPy integers, real ones Python or NumPy integers or floats;
    bools, and floats as integers, are rejected (the same rule holds in
    every converter).

    Args:
        size: The window length, a positive integer: channels in mode
            "across_channels", positions per spatial axis in mode
            "within_channel". Defaults to 5.
        alpha: The coefficient of each squared term, >= 0. Defaults to 1e-4.
        beta: The exponent, >= 0. Defaults to 0.75.
        bias: The additive constant k, > 0. Defaults to 2.0.
        mode: "across_channels" (default) or "within_channel".
        data_format: "channels_last" or "channels_first". Defaults to
            `keras.config.image_data_format()`.
        even_window_side: For an even `size`, the side of the centre that
            holds the window's extra element: "after" (default; TensorFlow's
            SAME padding and ONNX) or "before" (PyTorch).
        implementation: "auto" (default) picks the fastest exact path;
            "native" calls `tf.nn.local_response_normalization` and raises a
            `ValueError` where that op cannot compute the layer (other
            backends, modes, ranks, layouts, even sizes, float64);
            "portable" always uses the `keras.ops` implementation.
        learnable: False (default: fixed hyperparameters), True (alpha,
            beta and bias become trainable weights of those names), or a
            tuple of the names from ("alpha", "beta", "bias",
            "window_scale") to learn ("window_scale" only with
            window="exponential"; the paper learns all four). Each weight
            holds the logarithm of its parameter, initialized from the
            constructor's value, so the parameter stays > 0 and an
            optimizer moves it by factors (alpha from 1e-4 to 1e-1 is 6.9
            in the weight).
        window: "box" (default: `size` neighbours) or "exponential": across
            channels, every channel c' weighs `exp(-|c - c'| / window_scale)`
            (1 at distance 0; `size` is unused), Miller, Chung & Miller's
            divisive normalization. Their released code (github.com/
            MikiMiller95/DivisiveNormalization; the paper's own equation was
            not checked) computes `x**2 / (k * (1 + alpha_p / lambda *
            sum))**beta`, i.e. `bias = k`, `alpha = k * alpha_p / lambda`,
            `window_scale = lambda` here, with `x` instead of `x**2` in the
            numerator and their kernel cut at about 4 lambda channels on
            each side (this one spans all channels).
        window_scale: The exponential window's decay length lambda, in
            channels (> 0); only with window="exponential".
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        A tensor of rank >= 3: `(batch, *spatial, channels)` for
        channels_last, `(batch, channels, *spatial)` for channels_first.
        Mode "across_channels" needs the channel dimension to be known.

    Output shape:
        The same as the input.

    Example:

    >>> x = keras.random.uniform((2, 55, 55, 96), maxval=10.0)
    >>> layer = keras_lrn.LocalResponseNormalization()  # AlexNet's LRN
    >>> layer(x).shape
    (2, 55, 55, 96)
    >>> # Caffe's bvlc_alexnet prototxt: local_size 5, alpha 1e-4, beta 0.75
    >>> caffe_lrn = keras_lrn.LRN.from_caffe(local_size=5, alpha=1e-4)
    >>> caffe_lrn.alpha  # Caffe divides alpha by local_size
    2e-05

    Reference:
        - [Miller, Chung and Miller, Divisive Feature Normalization
          Improves Image Recognition Performance in AlexNet, ICLR 2022](
          https://openreview.net/forum?id=aOX3a9q3RVV) (learned parameters,
          exponential window)
        - [Krizhevsky, Sutskever and Hinton, ImageNet Classification with
          Deep Convolutional Neural Networks, NeurIPS 2012, section 3.3](
          https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks)
        - [Jarrett et al., What is the best Multi-Stage Architecture for
          Object Recognition?, ICCV 2009](
          https://doi.org/10.1109/ICCV.2009.5459469)
    """

    def __init__(
        self,
        size=5,
        alpha=1e-4,
        beta=0.75,
        bias=2.0,
        mode="across_channels",
        data_format=None,
        even_window_side="after",
        implementation="auto",
        learnable=False,
        window="box",
        window_scale=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        arguments = lrn_ops.validate_arguments(
            size, alpha, beta, bias, mode, data_format, even_window_side,
            implementation,
        )
        self.size = arguments["size"]
        self.alpha = arguments["alpha"]
        self.beta = arguments["beta"]
        self.bias = arguments["bias"]
        self.mode = mode
        self.data_format = arguments["data_format"]
        self.even_window_side = even_window_side
        self.implementation = implementation
        # Learned parameters and the exponential window (keras_lrn.learnable)
        self.learned_parameters = learnable_lrn.validate_arguments(
            learnable, window, window_scale, mode, alpha, beta, bias,
            implementation,
        )
        self.learnable = (learnable if isinstance(learnable, bool)
                          else list(self.learned_parameters))
        self.window = window
        self.window_scale = (None if window_scale is None
                             else float(window_scale))
        self.input_spec = keras.layers.InputSpec(min_ndim=3)
        self.supports_masking = True

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        lrn_ops.validate_input(
            input_shape, self.compute_dtype, self.mode, self.data_format
        )
        lrn_ops.validate_for_compute_dtype(
            self.alpha, self.beta, self.bias, self.compute_dtype
        )
        if self.implementation == "native":
            lrn_ops.raise_if_native_unavailable(
                lrn_ops.native_unavailable_reason(
                    self.mode, self.size, self.data_format, input_shape,
                    self.compute_dtype,
                )
            )
        rank = len(input_shape)
        if self.mode == "across_channels":
            channel_axis = -1 if self.data_format == "channels_last" else 1
            self.input_spec = keras.layers.InputSpec(
                ndim=rank, axes={channel_axis: input_shape[channel_axis]}
            )
        else:
            self.input_spec = keras.layers.InputSpec(ndim=rank)
        self.learned_weights = {
            name: self.add_weight(
                name=name, shape=(), autocast=False,
                initializer=keras.initializers.Constant(
                    learnable_lrn.to_weight(getattr(self, name))),
            )
            for name in self.learned_parameters
        }

    def call(self, inputs):
        if self.learned_parameters or self.window != "box":
            return self._call_learnable(inputs)
        return lrn_ops.normalize(
            inputs,
            size=self.size,
            alpha=self.alpha,
            beta=self.beta,
            bias=self.bias,
            mode=self.mode,
            data_format=self.data_format,
            even_window_side=self.even_window_side,
            implementation=self.implementation,
        )

    def _call_learnable(self, inputs):
        """LRN with the learned parameters' current values and the chosen
        window, through `keras_lrn.learnable`."""
        value = {name: getattr(self, name)
                 for name in learnable_lrn.PARAMETERS}
        for name, weight in self.learned_weights.items():
            value[name] = learnable_lrn.from_weight(weight)
        if self.window == "exponential":
            window = learnable_lrn.ExponentialWindow(
                value["window_scale"],
                -1 if self.data_format == "channels_last" else 1)
        else:
            window = lrn_ops.Window.of(
                inputs.shape, self.size, self.mode, self.data_format,
                self.even_window_side)
        return learnable_lrn.learnable_lrn(
            inputs, value["alpha"], value["beta"], value["bias"], window)

    def compute_output_shape(self, input_shape):
        return input_shape

    def _assert_input_compatibility(self, arg_0):
        # Keras's input-spec check reads the shape first: an input of
        # unknown rank (a tf.function traced with TensorSpec(None)) gets
        # our message, which says rank, instead of TensorFlow's as_list()
        lrn_ops.static_shape(arg_0)
        super()._assert_input_compatibility(arg_0)

    def compute_output_spec(self, inputs):
        # checks the input's dtype when the model is built: an integer
        # keras.Input fails here, not at predict
        lrn_ops.validate_input(
            lrn_ops.static_shape(inputs), inputs.dtype, self.mode,
            self.data_format,
        )
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "size": self.size,
                "alpha": self.alpha,
                "beta": self.beta,
                "bias": self.bias,
                "mode": self.mode,
                "data_format": self.data_format,
                "even_window_side": self.even_window_side,
                "implementation": self.implementation,
            }
        )
        # only where they differ from the defaults: files saved with
        # default settings keep the config of release 0.1.0
        for name, default in (("learnable", False), ("window", "box"),
                              ("window_scale", None)):
            if getattr(self, name) != default:
                config[name] = getattr(self, name)
        return config

    @classmethod
    def from_config(cls, config):
        """The layer `config` describes; a `ValueError` naming the entry
        whose value is not allowed (Keras's own `from_config` would turn it
        into a `TypeError`)."""
        try:
            return super().from_config(config)
        except TypeError as error:
            if isinstance(error.__context__, ValueError):
                raise ValueError(str(error)) from error.__context__
            raise

    # Converters from other frameworks' hyperparameters. Each goes through a
    # row of `conventions.CONVENTIONS`; `**kwargs` are layer arguments.

    @classmethod
    def from_tensorflow(cls, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5,
                        **kwargs):
        """The layer `tf.nn.local_response_normalization` computes.

        TensorFlow names the window by its radius (`size = 2 *
        depth_radius + 1`) and applies `alpha` per term. The defaults are
        TensorFlow's.
        """
        return cls._from_convention(
            "tensorflow", depth_radius, alpha, beta, bias, kwargs
        )

    @classmethod
    def from_caffe(cls, local_size=5, alpha=1.0, beta=0.75, k=1.0,
                   norm_region="ACROSS_CHANNELS", **kwargs):
        """The layer Caffe's `LRN` layer computes (defaults are Caffe's).

        Caffe requires an odd `local_size` and divides `alpha` by it in
        ACROSS_CHANNELS mode. In WITHIN_CHANNEL mode it averages over a
        `local_size x local_size` box (alpha divided by `local_size ** 2`)
        and fixes k at 1: another `k` is ignored with a warning.
        """
        if (not isinstance(norm_region, str)
                or norm_region not in conventions.CAFFE_NORM_REGIONS):
            raise ValueError(
                "Argument `norm_region` must be one of "
                f"{tuple(conventions.CAFFE_NORM_REGIONS)}. "
                f"Received: norm_region={norm_region!r}"
            )
        return cls._from_convention(
            conventions.CAFFE_NORM_REGIONS[norm_region], local_size, alpha,
            beta, k, kwargs,
        )

    @classmethod
    def from_torch(cls, size, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        """The layer `torch.nn.LocalResponseNorm(size, alpha, beta, k)`
        computes: alpha divided by `size`, and for an even `size` the extra
        element of the window before the centre."""
        return cls._from_convention("torch", size, alpha, beta, k, kwargs)

    @classmethod
    def from_onnx(cls, size, alpha=1e-4, beta=0.75, bias=1.0, **kwargs):
        """The layer ONNX's `LRN` operator computes: alpha divided by
        `size`, and for an even `size` the extra element after the centre."""
        return cls._from_convention("onnx", size, alpha, beta, bias, kwargs)

    @classmethod
    def _from_convention(cls, convention, window, alpha, beta, bias, kwargs):
        arguments = conventions.to_canonical(
            conventions.CONVENTIONS[convention], window, alpha, beta, bias
        )
        overlap = sorted(set(arguments) & set(kwargs))
        if overlap:
            raise ValueError(
                f"Arguments {overlap} are set by the converter from "
                f"{conventions.CONVENTIONS[convention].name} and cannot be "
                f"passed as well. Received: {kwargs}"
            )
        return cls(**arguments, **kwargs)

    def to_tensorflow(self):
        """Arguments of `tf.nn.local_response_normalization` (`depth_radius`,
        `bias`, `alpha`, `beta`) that compute this layer's mapping."""
        return self._to_convention("tensorflow")

    def to_caffe(self):
        """Caffe `lrn_param` fields (`local_size`, `alpha`, `beta`, `k`,
        `norm_region`) that compute this layer's mapping."""
        return self._to_convention(
            "caffe_across_channels"
            if self.mode == "across_channels"
            else "caffe_within_channel"
        )

    def to_torch(self):
        """Arguments of `torch.nn.LocalResponseNorm` (`size`, `alpha`,
        `beta`, `k`) that compute this layer's mapping."""
        return self._to_convention("torch")

    def to_onnx(self):
        """Attributes of ONNX's `LRN` (`size`, `alpha`, `beta`, `bias`) that
        compute this layer's mapping."""
        return self._to_convention("onnx")

    def _to_convention(self, convention):
        if self.learned_parameters or self.window != "box":
            raise ValueError(
                f"{conventions.CONVENTIONS[convention].name}'s LRN has fixed "
                "hyperparameters and a box window: it cannot express this "
                "layer. Received: layer with "
                f"learnable={self.learnable!r}, window={self.window!r}"
            )
        return conventions.from_canonical(
            conventions.CONVENTIONS[convention], self.size, self.alpha,
            self.beta, self.bias, self.mode, self.even_window_side,
        )


LRN = LocalResponseNormalization
