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
`from_onnx_zoo(path)` recognizes which of them a file holds.
`preprocess_input` and `decode_predictions` follow those models' Caffe
conventions.

The modules, bottom up (imports point down only; `tests/test_import_graph.py`
checks it):

- `_common.py`: Keras building blocks and argument checks shared by the
  builders.
- `zoo.py`: the ONNX reader. It knows no network: it parses a file safely
  and checks it against a `zoo.ZooNetwork` it is given.
- `alexnet.py`, `zfnet.py`, `googlenet.py`: one network each, its builder
  and, beside it, its zoo mapping `ZOO` (the graph's layers in order with
  their weight shapes, its pools and LRN attributes).
- this `__init__`: the public names and `ZOO_NETWORKS`, the one table of
  zoo networks that `from_onnx_zoo` and the tests use.

Adding a network: write `keras_lrn/applications/mynet.py` with the builder
(using `_common`'s blocks; `weights` handled as in `zfnet.py`) and, if the
ONNX model zoo publishes it, its `ZOO = zoo.ZooNetwork(...)` mapping beside
it. Then, in this file only, import the builder, add it to `__all__`, and
add `mynet.ZOO` to `ZOO_NETWORKS`. Nothing else in `keras_lrn/` changes.
"""

from keras_lrn.applications import alexnet
from keras_lrn.applications import googlenet
from keras_lrn.applications import zfnet
from keras_lrn.applications import zoo
from keras_lrn.applications.alexnet import AlexNet
from keras_lrn.applications.googlenet import GoogLeNet
from keras_lrn.applications.imagenet_utils import decode_predictions
from keras_lrn.applications.imagenet_utils import preprocess_input
from keras_lrn.applications.zfnet import ZFNet

# The ONNX model zoo networks `from_onnx_zoo` recognizes: one table.
ZOO_NETWORKS = (alexnet.ZOO, zfnet.ZOO, googlenet.ZOO)


def from_onnx_zoo(path, classifier_activation="softmax", name=None):
    """Builds a Keras model from an ONNX model zoo file with its weights.

    Recognizes which of the zoo's LRN networks the file holds and returns
    the matching Keras architecture with the file's weights:

    | zoo file | Keras model |
    |---|---|
    | `bvlcalexnet-{9..12}.onnx` (bvlc_alexnet) | `AlexNet(variant="bvlc")` |
    | `zfnet512-{9..12}.onnx` | `ZFNet(variant="zfnet512")` |
    | `googlenet-{9..12}.onnx` (inception_v1) | `GoogLeNet()` |

    The Keras model is channels_last (`(batch, 224, 224, 3)` inputs where
    the file takes `(batch, 3, 224, 224)`), uses `LocalResponseNormalization`
    built with `from_onnx` from the file's LRN attributes, keeps the file's
    grouped convolutions (`Conv2D(groups=2)`), and gives the file's outputs
    on the same (transposed) input. Inputs follow the Caffe convention of
    these models: BGR, 0-255, mean subtracted (`preprocess_input`).

    The file is untrusted input: it is parsed without following its
    external-data references (external data is read only from regular
    files inside the file's folder, links resolved), and its fingerprint
    and every weight shape, convolution, pool and LRN are checked against
    the network's zoo graph before the Keras model is built.

    Nothing is downloaded: `path` is a file from the ONNX model zoo
    (https://github.com/onnx/models, `validated/vision/classification/`).
    Float32 files of opsets 9 to 12 are supported.

    Args:
        path: path to the `.onnx` file.
        classifier_activation: activation of the output layer: `"softmax"`
            (the file's output, the default) or `None` (logits).
        name: model name; defaults to the builder's.

    Returns:
        A `keras.Model` holding the file's weights.

    Raises:
        ImportError: if `onnx` is not installed.
        ValueError: naming the file and the problem, if the file is
            missing, empty, truncated or malformed, is not one of the
            networks, is quantized (int8) or has an unsupported opset.

    Example:

    ```python
    from keras_lrn.applications import from_onnx_zoo, preprocess_input
    model = from_onnx_zoo("bvlcalexnet-12.onnx")
    probs = model.predict(preprocess_input(images_rgb_224))
    ```
    """
    return zoo.build(path, ZOO_NETWORKS, classifier_activation, name)


__all__ = [
    "AlexNet",
    "GoogLeNet",
    "ZFNet",
    "ZOO_NETWORKS",
    "decode_predictions",
    "from_onnx_zoo",
    "preprocess_input",
]
