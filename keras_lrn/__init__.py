"""keras-lrn: Local Response Normalization as a first-class Keras 3 layer."""

from keras_lrn import _exporters
from keras_lrn import applications
from keras_lrn import ops
from keras_lrn.layer import LRN
from keras_lrn.layer import LocalResponseNormalization
from keras_lrn.legacy import legacy_objects
from keras_lrn.ops import native_for_export

__version__ = "0.2.0.dev0"

_exporters.name_extras_in_keras_errors()

__all__ = ["LRN", "LocalResponseNormalization", "applications",
           "legacy_objects", "native_for_export", "ops", "__version__"]
