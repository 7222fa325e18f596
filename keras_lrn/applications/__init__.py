"""Reference CNN architectures that use Local Response Normalization.

The builders follow the `keras.applications` conventions
(`include_top`, `weights`, `input_tensor`, `input_shape`, `pooling`,
`classes`, `classifier_activation`) and add the arguments needed to study
LRN: `normalization="lrn" | "none" | "batchnorm"` and, for AlexNet,
`variant="original" | "caffenet"`.

No pretrained weights are downloaded: `weights` is `None` or a path to a
local `.keras` / `.weights.h5` file.
"""

from keras_lrn.applications.alexnet import AlexNet
from keras_lrn.applications.zfnet import ZFNet

__all__ = ["AlexNet", "ZFNet"]
