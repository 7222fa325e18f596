"""Reference CNN architectures that use Local Response Normalization.

The builders follow the `keras.applications` conventions
(`include_top`, `weights`, `input_tensor`, `input_shape`, `pooling`,
`classes`, `classifier_activation`) and add the arguments needed to study
LRN: `normalization="lrn" | "none" | "batchnorm"` and, for AlexNet,
`variant="original" | "caffenet" | "bvlc"`.

No pretrained weights are downloaded: `weights` is `None`, a path to a
local `.keras` / `.weights.h5` file, or, for the ONNX model zoo's
architectures (`AlexNet(variant="bvlc")`, `ZFNet(variant="zfnet512")`,
`GoogLeNet()`), a path to the zoo's `.onnx` file the user downloaded;
`from_onnx_zoo(path)` recognizes which of the three a file holds.
`preprocess_input` and `decode_predictions` follow those models' Caffe
conventions.
"""

from keras_lrn.applications.alexnet import AlexNet
from keras_lrn.applications.googlenet import GoogLeNet
from keras_lrn.applications.imagenet_utils import decode_predictions
from keras_lrn.applications.imagenet_utils import preprocess_input
from keras_lrn.applications.zfnet import ZFNet
from keras_lrn.applications.zoo import from_onnx_zoo

__all__ = [
    "AlexNet",
    "GoogLeNet",
    "ZFNet",
    "decode_predictions",
    "from_onnx_zoo",
    "preprocess_input",
]
