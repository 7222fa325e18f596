"""The `LocalResponseNormalization` Keras layer."""

import threading

import keras

from keras_lrn import _arguments
from keras_lrn import _dispatch
from keras_lrn import _learned_weights
from keras_lrn import _operation
from keras_lrn import conventions

_BUILD_LOCK = threading.Lock()


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

    The defaults are AlexNet's (section 3.3 of the paper: n=5, alpha=1e-4,
    beta=0.75, k=2), so `LocalResponseNormalization()` is AlexNet's LRN.
    `alpha` multiplies each squared term, as in the paper and TensorFlow;
    Caffe, PyTorch and ONNX divide their alpha by the window and TensorFlow
    names the window by its radius: build the layer from their
    hyperparameters with `from_caffe`, `from_torch`, `from_onnx` or
    `from_tensorflow`, and get theirs back with `to_caffe()` and siblings
    ([conventions](../guides/conventions.md)).

    The layer computes in its dtype policy's compute dtype; half precision
    accumulates in float32 and rounds once ([precision and
    dtypes](../guides/computation.md#precision-dtypes-and-non-finite-inputs)).
    Every `alpha`, `beta`, `bias` and `window_scale` (argument, config or
    stored weight) passes one check against the compute dtype: a value out
    of bounds raises a `ValueError` naming it and the bound, and no accepted
    configuration or file turns a finite input into NaN (every rule and
    bound: [untrusted files and arguments](../guides/saving-and-export.md#untrusted-files-and-arguments-what-they-can-and-cannot-do)).

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
            "portable" always uses the `keras.ops` implementation; "native"
            calls `tf.nn.local_response_normalization` and raises a
            `ValueError` where that op cannot compute the layer
            ([implementations](../guides/computation.md#implementations)).
        learnable: False (default), True (alpha, beta and bias become
            trainable weights of those names), or a list or tuple of the
            names from ("alpha", "beta", "bias", "window_scale") to learn
            ("window_scale" only with window="exponential"). Each weight
            holds its parameter's logarithm, starting at the constructor's
            value ([learned LRN](../guides/learned-lrn.md)).
        window: "box" (default: `size` neighbours) or "exponential": across
            channels, every channel c' weighs `exp(-|c - c'| / window_scale)`
            (`size` is unused): Miller, Chung & Miller's divisive
            normalization, their parameters mapped in [learned
            LRN](../guides/learned-lrn.md).
        window_scale: The exponential window's decay length, in channels
            (at least 0.0115 in float32, 0.0014 in float64); only with
            window="exponential".
        groups: The number of equal contiguous channel groups that windows
            stay inside, as AlexNet's two GPU towers were ([grouped
            LRN](../guides/distributed.md#grouped-lrn-the-towers-normalization)).
            Defaults to 1; it must divide the channels (checked at build).
            Mode "within_channel" takes only 1, and `to_caffe()` and
            siblings refuse groups > 1.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`
            (a float dtype or a policy of one, e.g. "mixed_float16"; any
            other raises a `ValueError` naming `dtype`).

    Input shape:
        A tensor of rank >= 3: `(batch, *spatial, channels)` for
        channels_last, `(batch, channels, *spatial)` for channels_first.
        Mode "across_channels" needs the channel dimension to be known.

    Output shape:
        The same as the input.

    Example:

    >>> x = keras.random.uniform((2, 55, 55, 96), maxval=10.0)
    >>> layer = keras_lrn.LocalResponseNormalization()  # AlexNet's LRN
    >>> tuple(layer(x).shape)
    (2, 55, 55, 96)
    >>> # Caffe's bvlc_alexnet prototxt: local_size 5, alpha 1e-4, beta 0.75
    >>> caffe_lrn = keras_lrn.LRN.from_caffe(local_size=5, alpha=1e-4)
    >>> caffe_lrn.alpha  # Caffe divides alpha by local_size
    2e-05

    Reference:
        - [Krizhevsky et al., 2012](https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks),
          section 3.3.
        - [Jarrett et al., 2009](https://doi.org/10.1109/ICCV.2009.5459469).
        - [Miller et al., 2022](https://openreview.net/forum?id=aOX3a9q3RVV)
          (learned parameters, exponential window).
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4,
                 beta: float = 0.75, bias: float = 2.0,
                 mode: str = "across_channels",
                 data_format: str | None = None,
                 even_window_side: str = "after",
                 implementation: str = "auto",
                 learnable: bool | list[str] | tuple[str, ...] = False,
                 window: str = "box", window_scale: float | None = None,
                 groups: int = 1, **kwargs):
        _arguments.raise_for_convention_keywords(kwargs)
        super().__init__(**kwargs)
        _arguments.validate_dtype_policy(self.dtype_policy,
                                         kwargs.get("dtype"))
        arguments = _arguments.validate_arguments(
            size, alpha, beta, bias, mode, data_format, even_window_side,
            implementation, learnable, window, window_scale, groups)
        self.groups = arguments["groups"]
        if implementation == "native":
            _dispatch.raise_if_native_unavailable(
                mode, arguments["size"], arguments["data_format"])
        self.size = arguments["size"]
        self.mode = mode
        self.data_format = arguments["data_format"]
        self.even_window_side = even_window_side
        self.implementation = implementation
        self.learnable = (learnable if isinstance(learnable, bool)
                          else list(arguments["learned"]))
        self.window = window
        self.learned_parameters = arguments["learned"]
        # the constructor's values; a learned parameter's weight starts here
        self._initial_values = {
            name: arguments[name] for name in _arguments.PARAMETERS}
        self._learned_weights = {}
        self.input_spec = keras.layers.InputSpec(min_ndim=3)
        self.supports_masking = True
        # half precision computes from the caller's input, not from the
        # input rounded to float16 or bfloat16 (a finite float32 input
        # above 65504 would become inf); `call` rounds the result once
        if self.compute_dtype in _arguments.HALF_PRECISION_DTYPES:
            self.autocast = False
        self._checked_dtypes = None
        self._check_initial_values()

    @property
    def alpha(self):
        """The alpha in use: the constructor's, or the learned weight's."""
        return self._value_in_use("alpha")

    @property
    def beta(self):
        """The beta in use (see `alpha`)."""
        return self._value_in_use("beta")

    @property
    def bias(self):
        """The bias in use (see `alpha`)."""
        return self._value_in_use("bias")

    @property
    def window_scale(self):
        """The window_scale in use (see `alpha`); `None` for a box window."""
        return self._value_in_use("window_scale")

    def _value_in_use(self, name):
        return _learned_weights.value_in_use(
            name, self._initial_values, self._learned_weights,
            self.compute_dtype)

    def _check_initial_values(self):
        """The gate (`_learned_weights.check_values`) for the constructor's
        values in the layer's dtypes, again only where they changed."""
        dtypes = (self.compute_dtype, self.variable_dtype)
        if self._checked_dtypes != dtypes:
            _learned_weights.check_values(
                self._initial_values, _learned_weights.initial_logs(
                    self._initial_values, self.learned_parameters), *dtypes)
            self._checked_dtypes = dtypes

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        _arguments.validate_input(
            input_shape, self.compute_dtype, self.mode, self.data_format)
        # the dtype policy may have changed since the constructor (checked
        # only then: a fixed layer built inside `torch.compile` runs no NumPy)
        self._check_initial_values()
        _arguments.validate_groups_divide_channels(
            input_shape, self.groups, self.data_format)
        if self.implementation == "native":
            _dispatch.raise_if_native_unavailable(
                self.mode, self.size, self.data_format, input_shape,
                self.compute_dtype)
        rank = len(input_shape)
        if self.mode == "across_channels":
            channel_axis = -1 if self.data_format == "channels_last" else 1
            self.input_spec = keras.layers.InputSpec(
                ndim=rank, axes={channel_axis: input_shape[channel_axis]})
        else:
            self.input_spec = keras.layers.InputSpec(ndim=rank)
        if not self.learned_parameters:
            # nothing to create: no lock, which `torch.compile(fullgraph=True)`
            # of an unbuilt layer could not trace
            return
        # Threads calling an unbuilt layer at once each run `build`: the
        # first creates the weights, the others find them.
        with _BUILD_LOCK:
            if not self._learned_weights:
                self._learned_weights = _learned_weights.create_weights(
                    self.add_weight, self._initial_values,
                    self.learned_parameters)

    def call(self, inputs):
        values = _learned_weights.values_in_use(
            self._initial_values, self._learned_weights, self.compute_dtype)
        with _dispatch.op_name_scope(self.name):
            outputs = _operation.normalize(
                inputs, size=self.size, mode=self.mode,
                data_format=self.data_format,
                even_window_side=self.even_window_side,
                implementation=self.implementation, window=self.window,
                learned=self.learned_parameters, groups=self.groups, **values)
        # a half-precision layer receives its input as the caller gave it
        # (see the constructor) and rounds the result once, here
        return keras.ops.cast(outputs, self.compute_dtype)

    def load_own_variables(self, store):
        """Loads the learned weights of a `.keras` file after checking that
        each (its parameter's logarithm) is one float, not an integer or a
        bool, whose parameter, computed as the layer computes it, passes
        the one value check (`_value_gate.validate_for_compute_dtype`); a
        `ValueError` names a refused weight, the file's value and the
        bound."""
        weights = [store[str(index)]
                   for index in range(len(self._learned_weights))
                   if str(index) in store]
        self._check_weights(weights, "loaded from the file")
        super().load_own_variables(store)

    def set_weights(self, weights):
        """Sets the learned weights (the logarithms of the learned
        parameters, in `weights` order) after the checks of
        `load_own_variables`; a `ValueError` names a refused weight, its
        value and the bound."""
        if len(weights) == len(self._learned_weights):
            self._check_weights(weights, "given to set_weights")
        super().set_weights(weights)

    def finalize_state(self):
        """Checks the learned weights a legacy `.h5` file gave the layer:
        Keras's `.h5` loader (`keras.models.load_model` and
        `model.load_weights`) assigns each weight, then calls this; weights
        that fail the checks of `load_own_variables` are reset to the
        constructor's values and a `ValueError` names them."""
        weights = _learned_weights.weights_as_numpy(
            self._learned_weights.values())
        try:
            self._check_weights(weights, "loaded from the file")
        except ValueError:
            _learned_weights.reset_weights(
                self._learned_weights, self._initial_values)
            raise

    def _check_weights(self, weights, source):
        _learned_weights.check_stored(
            weights, self._learned_weights, self._initial_values,
            self.compute_dtype, self.variable_dtype, self.name, source)

    def compute_output_shape(self, input_shape):
        return input_shape

    def _assert_input_compatibility(self, arg_0):
        # Keras's input-spec check reads the shape first: an input of
        # unknown rank (a tf.function traced with TensorSpec(None)) gets
        # our message, which says rank, instead of TensorFlow's as_list(),
        # and a 2-D input ours, which says what to do
        _arguments.validate_input(_arguments.static_shape(arg_0),
                                  arg_0.dtype, self.mode, self.data_format)
        super()._assert_input_compatibility(arg_0)

    def compute_output_spec(self, inputs):
        # checks the input's dtype when the model is built: an integer
        # keras.Input fails here, not at predict
        _arguments.validate_input(_arguments.static_shape(inputs),
                                  inputs.dtype, self.mode, self.data_format)
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        """The layer's arguments; for learned parameters, their initial
        (constructor) values: the current ones are the layer's weights,
        saved with them and read by `alpha`, `beta`, `bias` and
        `window_scale`."""
        config = super().get_config()
        initial = self._initial_values
        config.update(
            size=self.size, alpha=initial["alpha"], beta=initial["beta"],
            bias=initial["bias"], mode=self.mode, data_format=self.data_format,
            even_window_side=self.even_window_side,
            implementation=self.implementation)
        # only where they differ from the defaults: files saved with
        # default settings keep the config of release 0.1.0
        for name, value, default in (
                ("learnable", self.learnable, False),
                ("window", self.window, "box"),
                ("window_scale", initial["window_scale"], None),
                ("groups", self.groups, 1)):
            if value != default:
                config[name] = value
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

    # Converters from and to other frameworks' hyperparameters, through a row
    # of `conventions.CONVENTIONS`; `**kwargs` are layer arguments.

    @classmethod
    def from_tensorflow(cls, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0,
                        beta: float = 0.5, **kwargs):
        """The layer `tf.nn.local_response_normalization` computes: its
        window has `size = 2 * depth_radius + 1`, its `alpha` applies per
        term, and the defaults are TensorFlow's."""
        return cls(**conventions.layer_arguments(
            "tensorflow", depth_radius, alpha, beta, bias, kwargs))

    @classmethod
    def from_caffe(cls, local_size: int = 5, alpha: float = 1.0, beta: float = 0.75,
                   k: float = 1.0, norm_region: str = "ACROSS_CHANNELS", **kwargs):
        """The layer Caffe's `LRN` layer computes (defaults are Caffe's).

        Caffe requires an odd `local_size` and divides `alpha` by it in
        ACROSS_CHANNELS mode. In WITHIN_CHANNEL mode it averages over a
        `local_size x local_size` box (alpha divided by `local_size ** 2`)
        and fixes k at 1: another `k` is ignored with a warning.
        """
        return cls(**conventions.layer_arguments(
            conventions.caffe_convention(norm_region), local_size, alpha,
            beta, k, kwargs))

    @classmethod
    def from_torch(cls, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                   **kwargs):
        """The layer `torch.nn.LocalResponseNorm(size, alpha, beta, k)`
        computes: alpha divided by `size`, and for an even `size` the extra
        element of the window before the centre."""
        return cls(**conventions.layer_arguments(
            "torch", size, alpha, beta, k, kwargs))

    @classmethod
    def from_onnx(cls, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0,
                  **kwargs):
        """The layer ONNX's `LRN` operator computes: alpha divided by
        `size`, and for an even `size` the extra element after the centre."""
        return cls(**conventions.layer_arguments(
            "onnx", size, alpha, beta, bias, kwargs))

    def to_tensorflow(self):
        """Arguments of `tf.nn.local_response_normalization` (`depth_radius`,
        `bias`, `alpha`, `beta`) that compute this layer's mapping."""
        return conventions.framework_arguments("tensorflow", self)

    def to_caffe(self):
        """Caffe `lrn_param` fields (`local_size`, `alpha`, `beta`, `k`,
        `norm_region`) that compute this layer's mapping."""
        return conventions.framework_arguments(
            "caffe_across_channels" if self.mode == "across_channels"
            else "caffe_within_channel", self)

    def to_torch(self):
        """Arguments of `torch.nn.LocalResponseNorm` (`size`, `alpha`,
        `beta`, `k`) that compute this layer's mapping."""
        return conventions.framework_arguments("torch", self)

    def to_onnx(self):
        """Attributes of ONNX's `LRN` (`size`, `alpha`, `beta`, `bias`) that
        compute this layer's mapping."""
        return conventions.framework_arguments("onnx", self)


LRN = LocalResponseNormalization

