"""Input and output conventions of the Caffe-era ImageNet models.

The ONNX model zoo's bvlc_alexnet, zfnet512 and inception_v1 (GoogLeNet)
were trained in Caffe/Caffe2: BGR channels, 0-255 pixels, the ImageNet
mean subtracted, and the 1000 ILSVRC-2012 classes in the sorted order of
their WordNet ids.
"""

import importlib.util
import os

import numpy as np

import keras
from keras.applications import imagenet_utils

_TFDS_LABELS = os.path.join("datasets", "imagenet2012", "labels.txt")


def preprocess_input(x, data_format=None):
    """Preprocesses RGB images, 0-255, for the Caffe-era zoo models.

    Reverses the channels to BGR and subtracts the ImageNet mean pixel
    `(103.939, 116.779, 123.68)` (BGR), without scaling: the convention of
    Caffe's `bvlc_alexnet` and `bvlc_googlenet` and of the ONNX model
    zoo's `bvlc_alexnet`, `zfnet512` and `inception_v1`. The arithmetic is
    Keras's own `keras.applications.imagenet_utils.preprocess_input(
    mode="caffe")`; this function adds what that one leaves to the caller:
    it checks the shape, computes in float32 whatever the input's dtype
    (Keras keeps a float input's dtype and subtracts the mean in an
    integer tensor's), and never modifies a NumPy input (Keras subtracts
    in place). (Caffe's AlexNet subtracted a per-pixel mean image whose
    average is this pixel.)

    Args:
        x: RGB images with values in [0, 255], a NumPy array or a tensor
            of rank 3 or 4, of any real dtype.
        data_format: `"channels_last"` or `"channels_first"`; defaults to
            `keras.config.image_data_format()`.

    Returns:
        The preprocessed images, float32, of the same shape: a new NumPy
        array for a NumPy input, else a tensor.

    Example:

    >>> import numpy as np
    >>> x = np.full((1, 224, 224, 3), [255.0, 0.0, 0.0])   # pure red
    >>> preprocess_input(x)[0, 0, 0]
    array([-103.939, -116.779,  131.32 ], dtype=float32)
    """
    if data_format is None:
        data_format = keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "`data_format` must be 'channels_last' or 'channels_first'. "
            f"Received: data_format={data_format!r}"
        )
    if not hasattr(x, "shape"):
        x = np.asarray(x)
    axis = -1 if data_format == "channels_last" else -3
    if len(x.shape) not in (3, 4) or x.shape[axis] != 3:
        raise ValueError(
            "preprocess_input expects RGB images of rank 3 or 4 with 3 "
            f"channels ({data_format}). Received: x.shape={tuple(x.shape)}"
        )
    if isinstance(x, np.ndarray):
        # a float32 copy, which Keras flips and shifts in place; contiguous,
        # as torch.from_numpy needs (Keras returns a reversed view)
        return np.ascontiguousarray(imagenet_utils.preprocess_input(
            np.array(x, dtype="float32"), data_format=data_format,
            mode="caffe"))
    return imagenet_utils.preprocess_input(
        keras.ops.cast(x, "float32"), data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions of the zoo models into WordNet ids.

    Works offline: the class list is the ILSVRC-2012 label file that ships
    inside `tensorflow-datasets` (`pip install tensorflow-datasets`; it is
    read, not imported). It holds WordNet ids (e.g. `"n01440764"`, tench)
    in the sorted order the Caffe-era models use; no installed package
    ships the human-readable names, so the name field is the WordNet id
    too.

    Args:
        preds: a NumPy array or tensor of shape `(batch, 1000)`.
        top: how many classes to return per sample, a positive int.

    Returns:
        A list (one per sample) of lists of `(wnid, name, score)` tuples,
        best first, as `keras.applications.imagenet_utils.decode_predictions`
        returns them; `name` is the WordNet id.

    Example:

    >>> import numpy as np
    >>> preds = np.zeros((1, 1000)); preds[0, 0] = 1.0
    >>> decode_predictions(preds, top=1)
    [[('n01440764', 'n01440764', 1.0)]]
    """
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "decode_predictions expects predictions of shape (batch, 1000). "
            f"Received: preds.shape={preds.shape}"
        )
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive int. Received: top={top!r}")
    labels = imagenet_wnids()
    results = []
    for row in preds:
        best = np.argsort(row)[::-1][:top]
        results.append([(labels[i], labels[i], float(row[i])) for i in best])
    return results


def imagenet_wnids():
    """The 1000 ILSVRC-2012 WordNet ids in class order, from tensorflow-datasets."""
    spec = importlib.util.find_spec("tensorflow_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "decode_predictions reads the ImageNet label list that ships in "
            "tensorflow-datasets: pip install tensorflow-datasets."
        )
    path = os.path.join(spec.submodule_search_locations[0], _TFDS_LABELS)
    with open(path) as f:
        labels = f.read().split()
    if len(labels) != 1000:
        raise ValueError(
            f"The ImageNet label file holds {len(labels)} labels, expected "
            "1000: reinstall tensorflow-datasets (pip install --force-reinstall "
            f"tensorflow-datasets). Received: path={path!r}")
    return labels
