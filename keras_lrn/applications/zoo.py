"""Load the ONNX model zoo's trained LRN networks into Keras.

The ONNX model zoo (https://github.com/onnx/models) publishes three
ImageNet networks with Local Response Normalization, converted from Caffe
and Caffe2: `bvlc_alexnet` (files `bvlcalexnet-<opset>.onnx`), `zfnet512`
(`zfnet512-<opset>.onnx`) and `inception_v1`, i.e. GoogLeNet
(`googlenet-<opset>.onnx` / `inception-v1-<opset>.onnx`). `from_onnx_zoo`
reads such a file (the user downloads it; nothing is downloaded here),
recognizes the network from the shapes of its weights, checks the details
the conversion depends on (opset, LRN attributes, convolution strides,
padding and groups, pooling windows), builds the matching channels_last
Keras architecture (`AlexNet(variant="bvlc")`, `ZFNet(variant="zfnet512")`,
`GoogLeNet()`) and loads the file's weights into it.

`onnx` is an optional dependency (`pip install "keras-lrn[onnx]"`),
imported only when a file is read.
"""

import os

import keras
import numpy as np

from keras_lrn.layer import LocalResponseNormalization

OPSETS = range(9, 13)

_QUANTIZED_OPS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
    "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
    "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
}


def _maxpool(kernel, stride, pads=(0, 0, 0, 0)):
    return ("MaxPool", (kernel, kernel), (stride, stride), tuple(pads), 0, 0)


def _googlenet_pools():
    stride_two = _maxpool(3, 2)
    branch = _maxpool(3, 1, (1, 1, 1, 1))
    return (
        [stride_two, stride_two]          # stem: pool1, pool2
        + [branch] * 2 + [stride_two]     # 3a, 3b, pool3
        + [branch] * 5 + [stride_two]     # 4a-4e, pool4
        + [branch] * 2                    # 5a, 5b
        # The 7x7 average pool of the 6x6 map, padded on the bottom and
        # right, excluding the padding: a global average.
        + [("AveragePool", (7, 7), (1, 1), (0, 0, 1, 1), 0, 0)]
    )


def _googlenet_layers():
    names = ["conv1_7x7_s2", "conv2_3x3_reduce", "conv2_3x3"]
    for block in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        names += [f"inception_{block}_{branch}" for branch in
                  ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")]
    return names + ["loss3_classifier"]


_CAFFE_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]

# What each recognized network's graph holds: how it is recognized (numbers
# of Conv and Gemm nodes, first convolution's weight shape), its weighted
# layers in graph order (mapped to the Keras layers of these names, whose
# weight shapes must match) and its pooling nodes.
NETWORKS = {
    "bvlc_alexnet": {
        "fingerprint": (5, 3, (96, 3, 11, 11)),
        "layers": _CAFFE_LAYERS,
        # The last pool pads bottom and right to give 6x6 from 224x224.
        "pools": [_maxpool(3, 2), _maxpool(3, 2), _maxpool(3, 2, (0, 0, 1, 1))],
    },
    "zfnet512": {
        "fingerprint": (5, 3, (96, 3, 7, 7)),
        "layers": _CAFFE_LAYERS,
        "pools": [_maxpool(3, 2), _maxpool(3, 2), _maxpool(2, 2)],
    },
    "googlenet": {
        "fingerprint": (57, 1, (64, 3, 7, 7)),
        "layers": _googlenet_layers(),
        "pools": _googlenet_pools(),
    },
}


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
        ValueError: if the file is missing, is not one of the three
            networks, is quantized (int8) or has an unsupported opset.

    Example:

    ```python
    from keras_lrn.applications import from_onnx_zoo, preprocess_input
    model = from_onnx_zoo("bvlcalexnet-12.onnx")
    probs = model.predict(preprocess_input(images_rgb_224))
    ```
    """
    graph = _read(path)
    network = _identify(graph, path)
    # Imported here: the builders import this module to load `.onnx` weights.
    from keras_lrn.applications.alexnet import AlexNet
    from keras_lrn.applications.googlenet import GoogLeNet
    from keras_lrn.applications.zfnet import ZFNet

    builders = {
        "bvlc_alexnet": lambda **kw: AlexNet(variant="bvlc", **kw),
        "zfnet512": lambda **kw: ZFNet(variant="zfnet512", **kw),
        "googlenet": GoogLeNet,
    }
    kwargs = {"classifier_activation": classifier_activation}
    if name is not None:
        kwargs["name"] = name
    model = builders[network](**kwargs)
    _assign(model, graph, network, path)
    return model


def is_onnx_path(weights):
    """Whether `weights` names an `.onnx` file."""
    return (isinstance(weights, (str, os.PathLike))
            and os.fspath(weights).lower().endswith(".onnx"))


def load_zoo_weights(model, path, network):
    """Loads the zoo file `path`, which must hold `network`, into `model`.

    `model` is the builder's Keras model for `network`; headless models
    (`include_top=False`) take the convolutional weights only.
    """
    graph = _read(path)
    found = _identify(graph, path)
    if found != network:
        raise ValueError(
            f"`weights`={os.fspath(path)!r} holds the model zoo's {found}, "
            f"not {network}. Use `keras_lrn.applications.from_onnx_zoo(path)`, "
            "which picks the matching architecture."
        )
    _assign(model, graph, network, path)
    return model


# --------------------------------------------------------------------------
# Reading the graph
# --------------------------------------------------------------------------

def _read(path):
    """Parses the file into the weighted nodes, LRNs and pools it holds."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise ImportError(
            "Reading ONNX model zoo files needs the `onnx` package: "
            'pip install "keras-lrn[onnx]".'
        ) from e
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"ONNX file not found: path={path!r}.")
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf raises its own DecodeError
        raise ValueError(f"path={path!r} is not a readable ONNX file: {e}") from e

    nodes = list(model.graph.node)
    quantized = sorted({n.op_type for n in nodes} & _QUANTIZED_OPS)
    int_weights = [t.name for t in model.graph.initializer
                   if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)]
    if quantized or int_weights:
        raise ValueError(
            f"path={path!r} is a quantized (int8) model "
            f"({', '.join(quantized or int_weights[:3])}); only the model "
            "zoo's float32 files (e.g. `bvlcalexnet-12.onnx`, not "
            "`bvlcalexnet-12-int8.onnx`) can be loaded."
        )
    opset = next((o.version for o in model.opset_import
                  if o.domain in ("", "ai.onnx")), None)
    if opset not in OPSETS:
        raise ValueError(
            f"path={path!r} has opset {opset}; the model zoo's float32 "
            f"files of opsets {OPSETS.start} to {OPSETS.stop - 1} are "
            "supported."
        )

    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in nodes:
        if n.op_type == "Constant":
            constants[n.output[0]] = numpy_helper.to_array(
                onnx.helper.get_attribute_value(n.attribute[0]))
    for n in nodes:  # weights reshaped by the graph (GoogLeNet's classifier)
        if n.op_type == "Reshape" and all(i in constants for i in n.input):
            constants[n.output[0]] = constants[n.input[0]].reshape(
                constants[n.input[1]])

    graph = {"weighted": [], "lrn": [], "pools": []}
    for n in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type in ("Conv", "Gemm"):
            missing = [i for i in n.input[1:] if i and i not in constants]
            if missing:
                raise ValueError(
                    f"path={path!r}: the weights {missing} of {n.op_type} "
                    "node are computed by the graph, not stored in it (a "
                    "weight-stripped test file?); a model zoo file stores "
                    "them as initializers."
                )
            arrays = [constants[i] for i in n.input[1:] if i]
            if any(a.dtype != np.float32 for a in arrays):
                raise ValueError(
                    f"path={path!r} holds {arrays[0].dtype} weights; only "
                    "the model zoo's float32 files can be loaded."
                )
            graph["weighted"].append((n.op_type, attrs, arrays))
        elif n.op_type == "LRN":
            graph["lrn"].append(attrs)
        elif n.op_type in ("MaxPool", "AveragePool"):
            kernel = tuple(attrs["kernel_shape"])
            graph["pools"].append((
                n.op_type, kernel,
                tuple(attrs.get("strides", (1,) * len(kernel))),
                tuple(attrs.get("pads", (0,) * 2 * len(kernel))),
                attrs.get("ceil_mode", 0),
                attrs.get("count_include_pad", 0),
            ))
    return graph


def _fingerprint(graph):
    """Numbers of Conv and Gemm nodes and the first convolution's shape."""
    ops = [op for op, _, _ in graph["weighted"]]
    first = graph["weighted"][0][2][0].shape if ops else None
    return ops.count("Conv"), ops.count("Gemm"), tuple(first or ())


def _identify(graph, path):
    found = _fingerprint(graph)
    for network, spec in NETWORKS.items():
        if found == spec["fingerprint"]:
            return network
    raise ValueError(
        f"path={os.fspath(path)!r} is not one of the ONNX model zoo networks "
        f"that keras_lrn loads ({', '.join(NETWORKS)}): its {found[0]} "
        f"convolutions and {found[1]} fully connected layers (first "
        f"convolution weights {found[2]}) match none of them."
    )


# --------------------------------------------------------------------------
# Checking the details and assigning the weights
# --------------------------------------------------------------------------

def _assign(model, graph, network, path):
    spec = NETWORKS[network]
    where = f"path={os.fspath(path)!r} ({network})"
    if graph["pools"] != spec["pools"]:
        raise ValueError(
            f"{where}: its pooling layers {graph['pools']} differ from the "
            f"model zoo graph's {spec['pools']}; this conversion does not "
            "support that graph."
        )
    lrns = [layer for layer in model.layers
            if isinstance(layer, LocalResponseNormalization)]
    if lrns and len(lrns) != len(graph["lrn"]):
        raise ValueError(f"{where}: {len(graph['lrn'])} LRN nodes, expected "
                         f"{len(lrns)}.")
    for layer, attrs in zip(lrns, graph["lrn"]):
        ours = layer.to_onnx()
        theirs = {k: attrs.get(k, d) for k, d in
                  (("size", None), ("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0))}
        if theirs["size"] != ours["size"] or not np.allclose(
                [theirs[k] for k in ("alpha", "beta", "bias")],
                [ours[k] for k in ("alpha", "beta", "bias")], rtol=1e-6):
            raise ValueError(
                f"{where}: LRN attributes {theirs} differ from the layer "
                f"{layer.name}'s {ours}; this conversion does not support "
                "that graph."
            )

    present = {layer.name for layer in model.layers}
    loaded = set()
    for layer_name, (op, attrs, arrays) in zip(spec["layers"], graph["weighted"]):
        towers = [f"{layer_name}_tower{g}" for g in range(attrs.get("group", 1))]
        if layer_name in present and model.get_layer(layer_name).weights:
            targets = [model.get_layer(layer_name)]
        elif all(t in present for t in towers):
            targets = [model.get_layer(t) for t in towers]
        else:
            continue  # a headless model: no fully connected layers
        values = _keras_values(model, op, attrs, arrays, targets[0])
        if op == "Conv":
            _check_conv(model, attrs, targets, where)
        for g, layer in enumerate(targets):
            if len(targets) > 1:  # explicit towers: split the filters
                values_g = [np.split(v, len(targets), axis=-1)[g] for v in values]
            else:
                values_g = values
            expected = [tuple(w.shape) for w in layer.weights]
            if [v.shape for v in values_g] != expected:
                raise ValueError(
                    f"{where}: layer {layer.name!r} has weights of shapes "
                    f"{expected}, the file {[v.shape for v in values_g]}: "
                    "the file is not the model zoo's graph, or the model "
                    "was built with another input_shape or classes (the zoo's "
                    "weights need (224, 224, 3) and 1000)."
                )
            layer.set_weights(values_g)
            loaded.add(layer.name)
    unloaded = [layer.name for layer in model.layers
                if layer.weights and layer.name not in loaded]
    if unloaded:
        raise ValueError(
            f"{where}: the file has no weights for the layers {unloaded} "
            "(e.g. normalization='batchnorm'); build the model as the file's "
            "architecture to load it."
        )


def _keras_values(model, op, attrs, arrays, layer):
    if op == "Conv":
        return [arrays[0].transpose(2, 3, 1, 0)] + list(arrays[1:])
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
        raise ValueError(f"Unsupported Gemm attributes {attrs}.")
    kernel = arrays[0].T if attrs.get("transB", 0) else arrays[0]
    flatten = next((l for l in model.layers
                    if isinstance(l, keras.layers.Flatten)), None)
    if flatten is not None and layer.input is flatten.output:
        # ONNX flattens NCHW maps channel-major; Keras' Flatten flattens
        # channels_last order (also for channels_first models).
        shape = flatten.input.shape[1:]
        if flatten.data_format == "channels_first":
            c, h, w = shape
        else:
            h, w, c = shape
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return [kernel] + list(arrays[1:])


def _check_conv(model, attrs, targets, where):
    layer = targets[0]
    kernel = tuple(layer.kernel_size)
    if len(targets) > 1:
        groups = len(targets)
    else:
        groups = layer.groups
    strides = tuple(layer.strides)
    if layer.padding == "same":
        pads = tuple(k // 2 for k in kernel) * 2
    else:
        pad_name = layer.name.split("_tower")[0] + "_pad"
        if pad_name in {l.name for l in model.layers}:
            (top, bottom), (left, right) = model.get_layer(pad_name).padding
            pads = (top, left, bottom, right)
        else:
            pads = (0, 0, 0, 0)
    theirs = (tuple(attrs.get("strides", (1, 1))),
              tuple(attrs.get("pads", (0, 0, 0, 0))), attrs.get("group", 1),
              tuple(attrs.get("dilations", (1, 1))))
    if theirs != (strides, pads, groups, (1, 1)):
        raise ValueError(
            f"{where}: convolution {layer.name!r} has strides, pads, group, "
            f"dilations {theirs} in the file and {(strides, pads, groups, (1, 1))} "
            "in the Keras model; this conversion does not support that graph."
        )
