"""Loading models whose LRN was a custom layer of tf.keras 2 or old Keras.

Before Keras 3, LRN had no layer of its own: users wrote one, usually in one
of two conventions, and saved it into `.h5` files under their class's name.

- TensorFlow's: a layer around `tf.nn.local_response_normalization`, whose
  config holds `depth_radius` (window `2 * depth_radius + 1` channels),
  `bias`, `alpha` (per term) and `beta`, on channels_last input.
- Old Keras's `LRN2D` (Keras 0.x, copied into many tf.keras 2 code bases):
  `alpha` (per term), `k` (the bias), `beta` and `n` (an odd window of
  channels), on channels_first input (Theano's layout).

`legacy_objects` maps such class names to a loader that reads either config
and builds the `LocalResponseNormalization` computing the same function.
"""

from keras_lrn import conventions
from keras_lrn.layer import LocalResponseNormalization

LEGACY_CLASS_NAMES = ("LRN", "LRN2D", "LocalResponseNormalization")
# Arguments only keras-lrn's own layer has: a legacy convention's config
# holding one is no legacy layer's.
_KERAS_LRN_ONLY_KEYS = {"learnable", "window", "window_scale",
                        "implementation", "even_window_side", "mode"}

LRN2D = conventions.Convention(
    name="old Keras LRN2D",
    size_arg="n",
    size_is_radius=False,
    alpha_divisor_exponent=0,
    bias_arg="k",
    fixed_bias=None,
    mode="across_channels",
    even_window_side=None,  # LRN2D raised for an even n
)

# For each legacy convention: the config key that identifies it, its
# defaults (the class's own), and the layout of the tensors it normalized.
_LEGACY_CONVENTIONS = (
    ("depth_radius", conventions.CONVENTIONS["tensorflow"],
     dict(depth_radius=5, bias=1.0, alpha=1.0, beta=0.5), "channels_last"),
    ("n", LRN2D, dict(n=5, k=2.0, alpha=1e-4, beta=0.75), "channels_first"),
)


def legacy_objects(*class_names, data_format=None):
    """`custom_objects` that load legacy LRN layers as keras-lrn layers.

    Each name maps to a loader that reads the saved config of an LRN layer
    in TensorFlow's convention (`depth_radius`, `bias`, `alpha`, `beta`),
    old Keras's `LRN2D` convention (`alpha`, `k`, `beta`, `n`) or keras-lrn's
    own, and returns the `LocalResponseNormalization` that computes the same
    function. Other config entries (`name`, `trainable`, `dtype`,
    `data_format`) pass through to the layer.

    Args:
        *class_names: The class names the file stores for its LRN layers
            (the names of the classes that saved it, or their registered
            names, e.g. `"Custom>LRN"`). Defaults to `LEGACY_CLASS_NAMES`:
            `"LRN"`, `"LRN2D"` and `"LocalResponseNormalization"`.
        data_format: The layout of the LRN layers' inputs where their
            config does not store one. Defaults to the convention's own:
            "channels_last" for TensorFlow's, "channels_first" for `LRN2D`
            (which normalized axis 1).

    Returns:
        A dict from class name to loader, for `custom_objects`.

    Example:

    A file whose LRN layers were saved under the class name
    `"LocalResponseNorm"` loads with
    `keras.models.load_model(path, custom_objects=keras_lrn.legacy_objects("LocalResponseNorm"))`.
    Each loader builds the layer from the saved config:

    >>> objects = keras_lrn.legacy_objects("LocalResponseNorm")
    >>> list(objects)
    ['LocalResponseNorm']
    >>> layer = objects["LocalResponseNorm"](depth_radius=2, bias=2.0,
    ...                                      alpha=1e-4, beta=0.75)
    >>> layer.size, layer.alpha, layer.bias, layer.data_format
    (5, 0.0001, 2.0, 'channels_last')
    """
    names = class_names or LEGACY_CLASS_NAMES
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(
                "legacy_objects expects class names as non-empty strings. "
                f"Received: class_names={class_names!r}"
            )

    def load(**config):
        return from_legacy_config(config, data_format=data_format)

    return {name: load for name in names}


def from_legacy_config(config, data_format=None):
    """The `LocalResponseNormalization` a legacy LRN layer's config describes.

    Args:
        config: The layer's saved config (a dict), in TensorFlow's or
            `LRN2D`'s convention, or keras-lrn's own.
        data_format: The layout where `config` stores none; defaults to the
            convention's own (see `legacy_objects`).

    Returns:
        A `LocalResponseNormalization` layer.

    Raises:
        ValueError: for a config in no known convention, or naming the
            entry whose value the convention does not allow (e.g. `alpha`
            that is not a number, `n` or `depth_radius` that is not an
            integer; see `conventions.to_canonical`).

    Example:

    >>> layer = keras_lrn.legacy.from_legacy_config(
    ...     {"name": "norm1", "alpha": 1e-4, "k": 2, "beta": 0.75, "n": 5})
    >>> layer.size, layer.bias, layer.data_format
    (5, 2.0, 'channels_first')
    """
    if not isinstance(config, dict):
        raise ValueError(
            "A legacy LRN layer's config must be a dict. "
            f"Received: config={config!r}"
        )
    config = dict(config)
    present = [key for key in ("size",) + tuple(
        key for key, *_ in _LEGACY_CONVENTIONS) if key in config]
    if len(present) > 1:
        raise ValueError(
            "A legacy LRN layer's config names its window once, in one "
            "convention: `size` (keras-lrn's), `depth_radius` (TensorFlow's, "
            "a radius) or `n` (old Keras's LRN2D, a window), and these "
            "disagree on what the number means. Received: " + ", ".join(
                f"{key}={config[key]!r}" for key in present)
        )
    if "size" in config:
        return LocalResponseNormalization.from_config(config)
    for key, convention, defaults, default_format in _LEGACY_CONVENTIONS:
        if key not in config:
            continue
        newer = sorted(set(config) & _KERAS_LRN_ONLY_KEYS)
        if newer:
            raise ValueError(
                f"A {convention.name} config describes a layer with fixed "
                "hyperparameters and a box window; "
                f"{', '.join(repr(name) for name in newer)} belong to "
                "keras-lrn's own configs (which name their window `size`). "
                "Received: " + ", ".join(
                    f"{name}={config[name]!r}" for name in newer)
            )
        values = {name: config.pop(name, value)
                  for name, value in defaults.items()}
        arguments = conventions.to_canonical(
            convention, values[convention.size_arg], values["alpha"],
            values["beta"], values[convention.bias_arg],
        )
        config.setdefault("data_format", data_format or default_format)
        try:
            # the constructor checks the values (the one gate,
            # `_value_gate.validate_for_compute_dtype`) in the layer's dtype
            return LocalResponseNormalization(**arguments, **config)
        except ValueError as error:
            # the check names the layer's arguments: name the config's too
            saved = ", ".join(f"{name}={values[name]!r}" for name in
                              ("alpha", "beta", convention.bias_arg))
            raise ValueError(
                f"{error} (from the {convention.name} config's {saved})"
            ) from None
    raise ValueError(
        "The config is of no LRN convention keras_lrn knows: it needs "
        "`depth_radius` (TensorFlow's), `n` (old Keras's LRN2D) or `size` "
        f"(keras-lrn's). Received: config={config!r}"
    )
