"""Reference CNN architectures that use Local Response Normalization.

The builders follow the `keras.applications` conventions
(`include_top`, `weights`, `input_tensor`, `input_shape`, `pooling`,
`classes`, `classifier_activation`) and add the arguments needed to study
LRN: `normalization="lrn" | "none" | "batchnorm" | "learned"` and, for AlexNet,
`variant="original" | "caffenet" | "bvlc"`.

No pretrained weights are downloaded: `weights` is `None`, a path to a
local `.keras` / `.weights.h5` file, or, for the ONNX model zoo's
architectures (`AlexNet(variant="bvlc")`, `ZFNet(variant="zfnet512")`,
`GoogLeNet()`), a path to the zoo's `.onnx` file the user downloaded;
`from_onnx_zoo(path)` recognizes which of them a file holds.
`preprocess_input` and `decode_predictions` follow those models' Caffe
conventions.

The modules, bottom up (imports point down only; the import-linter
contracts in setup.cfg check it, `lint-imports`):

- `_common.py`: Keras building blocks and argument checks shared by the
  builders. It imports no builder and not the zoo reader.
- `alexnet.py`, `zfnet.py`, `googlenet.py`: leaves, one network each: its
  builder (architecture only: `weights` is `None` or a local Keras file)
  and, beside it, its zoo mapping `ZOO`, plain data (the graph's layers in
  order with their weight shapes, its pools and LRN attributes). They
  import `_common`, Keras and `keras_lrn.layer`, never the zoo reader.
- `_onnx_reader.py`: the ONNX reader, knowing no network: it refuses a
  file beyond the zoo networks' bytes or structure before parsing it, then
  parses its declarations (`read`) and reads its weights (`load`). `onnx`
  is imported only to read a file. Below it, `_onnx_wire.py` bounds a
  file's structure from its serialized form (the protobuf wire format)
  before anything parses it, and `_onnx_tensors.py` budgets the stored
  tensors' bytes from their declarations and reads each once.
- `zoo.py`: the mapping, above the builders and knowing none of them: it
  checks a file's graph against the mapping it is given;
  `zoo.with_zoo_weights(builder, mapping)` wraps a builder so that a
  `weights` path ending in `.onnx` is read and verified before the model
  is built, then loaded into it.
- this `__init__`: the wiring. The public builders are the leaves wrapped
  with their mappings, and `ZOO_NETWORKS` is the one table of zoo networks
  that `from_onnx_zoo` and the tests use.

Adding a network: write `keras_lrn/applications/mynet.py` with the builder
(using `_common`'s blocks; `weights` handled as in `zfnet.py`) and, if the
ONNX model zoo publishes it, its mapping `ZOO = {...}` beside it (the keys
`zoo.ZooNetwork.from_mapping` documents; `zfnet.py` is an example). Then,
in this file only, import the module, add
`MyNet = zoo.with_zoo_weights(mynet.MyNet, mynet.ZOO)` (or import the
builder as it is if it has no zoo file), add it to `__all__`, and add
`MyNet.zoo_network` to `ZOO_NETWORKS`. Nothing else in `keras_lrn/`
changes; setup.cfg's import contract for `keras_lrn.applications` gets
`mynet` on the builders' floor.
"""

from keras_lrn.applications import alexnet
from keras_lrn.applications import googlenet
from keras_lrn.applications import zfnet
from keras_lrn.applications import zoo
from keras_lrn.applications.imagenet_utils import decode_predictions
from keras_lrn.applications.imagenet_utils import preprocess_input

# Each builder with its zoo mapping: `weights` may be the zoo's .onnx file.
AlexNet = zoo.with_zoo_weights(alexnet.AlexNet, alexnet.ZOO)
ZFNet = zoo.with_zoo_weights(zfnet.ZFNet, zfnet.ZOO)
GoogLeNet = zoo.with_zoo_weights(googlenet.GoogLeNet, googlenet.ZOO)

# The ONNX model zoo networks `from_onnx_zoo` recognizes: one table.
ZOO_NETWORKS = (AlexNet.zoo_network, ZFNet.zoo_network,
                GoogLeNet.zoo_network)


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

    The file is untrusted input. Its structure is checked from its
    serialized form before it is parsed (nodes, attribute elements, names,
    stored tensors and graph bytes within what the zoo's networks need:
    `keras_lrn.applications._onnx_wire.MAX_NODES` and siblings). Its
    graph is parsed without following its external-data references, and
    recognized and checked from its declarations alone before any weight is read: its opset imports
    (ai.onnx only), that every node input is produced, every tensor's
    declared dims, the bytes all its stored tensors declare together (at
    most `keras_lrn.applications._onnx_tensors.MAX_BYTES`, 352 MiB: the zoo's
    zfnet512 stores 349.0 MB), its fingerprint and every weight shape,
    convolution, pool and LRN against the network's zoo graph. Only then
    are the weights read, each stored tensor once however many nodes
    name it (external data only from regular files inside the file's
    folder, links resolved), and checked to be finite; then the Keras
    model is built.

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
            missing, empty, truncated or malformed (dims, dangling node
            inputs, opset domains other than ai.onnx), larger in structure
            than the zoo's networks (nodes, attributes, names), declares
            more than
            `MAX_BYTES` of tensors, is not one of the networks, is
            quantized (int8), has an unsupported opset or non-finite
            weights.

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
