"""Local Response Normalization as a function.

`local_response_normalization` is the computation of
`keras_lrn.LocalResponseNormalization`, for tensors and for symbolic inputs
of the functional API, on every Keras backend; `native_for_export` makes
exported graphs hold one `LRN` op where TensorFlow's can compute the layer.
"""

from keras_lrn._dispatch import native_for_export
from keras_lrn._operation import local_response_normalization
from keras_lrn.conventions import convention_arguments

__all__ = ["convention_arguments", "local_response_normalization",
           "native_for_export"]
