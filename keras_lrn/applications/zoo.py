"""Reading the ONNX model zoo's trained LRN networks into Keras models.

The ONNX model zoo (https://github.com/onnx/models) publishes ImageNet
networks with Local Response Normalization converted from Caffe and Caffe2.
This module maps such a file (the user downloads it; nothing is downloaded
here) to a Keras model and knows no network: each builder module declares
its network's zoo graph as plain data, a mapping `ZOO` beside its
architecture (its weighted layers in graph order with their weight shapes
and convolution attributes, its pools and LRN attributes; see
`ZooNetwork.from_mapping`), and the package's `__init__` pairs each builder
with its mapping through `with_zoo_weights` and lists them in one table,
`ZOO_NETWORKS`. Nothing here imports a builder.

The file is read by `keras_lrn.applications._onnx_reader` (bounded in bytes
and in structure before anything is parsed; see its `read`). Here,
`identify` and `verify` recognize the network and check it against a
`ZooNetwork` (every weight shape, convolution, pool and LRN) from the
file's declarations alone; only then are the weights read (`load`) and
`assign` puts them into the builder's model. Anything malformed raises
`ValueError` naming the file and the problem.
"""

import dataclasses
import functools
import inspect
import os

import numpy as np

from keras_lrn.applications import _common
from keras_lrn.applications._onnx_reader import load
from keras_lrn.applications._onnx_reader import read
from keras_lrn.applications._onnx_wire import file_error

_CONV_DEFAULTS = {"strides": (1, 1), "pads": (0, 0, 0, 0), "group": 1,
                  "dilations": (1, 1)}
_GEMM_DEFAULTS = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}
_LRN_DEFAULTS = {"alpha": 1e-4, "beta": 0.75, "bias": 1.0}


# --------------------------------------------------------------------------
# A network's zoo graph, from the plain mapping its builder module declares
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ZooLayer:
    """A weighted node of a zoo graph and the Keras layer it maps to.

    Attributes:
        name: the Keras layer (built by `_common.conv` / `_common.dense`).
        op: `"Conv"` or `"Gemm"`.
        shapes: the file's weight and bias shapes (ONNX layout).
        attributes: the node's attributes, defaults included.
        flattened_from: for the first `Gemm` after a flatten, the `(C, H,
            W)` feature map the file flattens channel-major.
    """

    name: str
    op: str
    shapes: tuple
    attributes: tuple
    flattened_from: tuple = None


@dataclasses.dataclass(frozen=True)
class ZooNetwork:
    """A zoo network's graph, paired with the builder of its architecture.

    Attributes:
        name: the network's name in messages, e.g. `"bvlc_alexnet"`.
        builder: makes the matching Keras model: the package's builder with
            `arguments` bound; takes the builders' other keyword arguments
            (`classifier_activation`, `name`, `weights`, ...).
        arguments: the builder arguments that select the zoo's
            architecture, e.g. `{"variant": "bvlc"}`.
        layers: the `ZooLayer`s in graph order.
        pools: the pooling nodes in graph order, as `read` reports them
            (op, kernel, strides, pads, ceil_mode, count_include_pad).
        lrn: the LRN nodes' ONNX attributes (`size`, `alpha`, `beta`,
            `bias`), the same for each.
        lrn_count: how many LRN nodes the graph has.
    """

    name: str
    builder: object
    arguments: dict
    layers: tuple
    pools: tuple
    lrn: dict
    lrn_count: int

    @property
    def fingerprint(self):
        """How a file is recognized: numbers of Conv and Gemm nodes and the
        first convolution's weight shape."""
        ops = [layer.op for layer in self.layers]
        first = next(layer.shapes[0] for layer in self.layers
                     if layer.op == "Conv")
        return ops.count("Conv"), ops.count("Gemm"), first

    @classmethod
    def from_mapping(cls, builder, mapping):
        """The `ZooNetwork` of the plain `mapping` a builder module declares.

        `mapping` is a dict:

        - `"name"`: the network's name in messages;
        - `"arguments"`: the builder arguments that select the zoo's
          architecture (`{"variant": "bvlc"}`; `{}` if there is one);
        - `"layers"`: the graph's `Conv` and `Gemm` nodes in graph order,
          each a dict with `"name"` (the Keras layer), `"op"`, `"weights"`
          (the file's weight shape: `(filters, channels // group, kh, kw)`
          or `(units, inputs)`) and, for a `Conv`, optional square
          `"strides"` (1), equal `"pads"` on every side (0) and `"group"`
          (1); for the `Gemm` after a flatten, `"flattened_from"`, the
          `(C, H, W)` map it flattens channel-major;
        - `"pools"`: the `MaxPool` / `AveragePool` nodes in graph order,
          each a dict with `"op"`, square `"kernel"` and `"strides"`, and
          optional `"pads"` `(top, left, bottom, right)` (zeros);
        - `"lrn"`: the LRN nodes' ONNX attributes (`size`, `alpha`,
          `beta`, `bias`), and `"lrn_count"`, their number.

        `builder` is called as `builder(**mapping["arguments"], **kwargs)`.
        """
        _check_keys(mapping, _MAPPING_KEYS, _MAPPING_KEYS, "mapping")
        layers = tuple(_layer(entry) for entry in mapping["layers"])
        pools = tuple(_pool(entry) for entry in mapping["pools"])
        arguments = dict(mapping["arguments"])
        return cls(
            name=mapping["name"],
            builder=functools.partial(builder, **arguments),
            arguments=arguments,
            layers=layers,
            pools=pools,
            lrn=dict(mapping["lrn"]),
            lrn_count=mapping["lrn_count"],
        )


_MAPPING_KEYS = {"name", "arguments", "layers", "pools", "lrn", "lrn_count"}
_LAYER_KEYS = {"Conv": {"name", "op", "weights", "strides", "pads", "group"},
               "Gemm": {"name", "op", "weights", "flattened_from"}}
_POOL_KEYS = {"op", "kernel", "strides", "pads"}


def _check_keys(entry, required, allowed, what):
    if not isinstance(entry, dict) or not (required <= set(entry) <= allowed):
        raise ValueError(
            f"A zoo {what} must be a dict with the keys {sorted(required)} "
            f"and optionally {sorted(allowed - required)}. Received: "
            f"{what}={entry!r}")


def _layer(entry):
    op = entry.get("op") if isinstance(entry, dict) else None
    if op not in _LAYER_KEYS:
        raise ValueError(
            "A zoo layer's op must be 'Conv' or 'Gemm'. Received: "
            f"layer={entry!r}")
    _check_keys(entry, {"name", "op", "weights"}, _LAYER_KEYS[op], "layer")
    weights = tuple(entry["weights"])
    if op == "Conv":
        strides, pads = entry.get("strides", 1), entry.get("pads", 0)
        attributes = dict(_CONV_DEFAULTS, strides=(strides, strides),
                          pads=(pads,) * 4, group=entry.get("group", 1))
        return ZooLayer(entry["name"], op, (weights, weights[:1]),
                        tuple(sorted(attributes.items())))
    attributes = dict(_GEMM_DEFAULTS, transB=1)  # x @ W.T + b
    flattened_from = entry.get("flattened_from")
    return ZooLayer(entry["name"], op, (weights, weights[:1]),
                    tuple(sorted(attributes.items())),
                    None if flattened_from is None else tuple(flattened_from))


def _pool(entry):
    _check_keys(entry, {"op", "kernel", "strides"}, _POOL_KEYS, "pool")
    kernel, strides = entry["kernel"], entry["strides"]
    return (entry["op"], (kernel, kernel), (strides, strides),
            tuple(entry.get("pads", (0, 0, 0, 0))), 0, 0)


def is_onnx_path(weights):
    """Whether `weights` names an `.onnx` file."""
    return (isinstance(weights, (str, os.PathLike))
            and os.fspath(weights).lower().endswith(".onnx"))


def with_zoo_weights(builder, mapping):
    """`builder`, also loading the ONNX model zoo's file of `mapping`.

    Returns a function with `builder`'s name, signature and docstring
    (`functools.wraps`). Given a `weights` path ending in `.onnx`, it
    checks that the arguments select the zoo's architecture
    (`mapping["arguments"]`), reads the file's graph and verifies it
    against the mapping (fingerprint, every weight shape, convolution,
    pool and LRN), then reads its weights (`load`), all before anything is
    built, then builds with `builder(..., weights=None)` (which validates
    the other arguments, once) and loads the file's weights into the
    model. Any other `weights` goes to
    `builder` as given.

    The returned function's `zoo_network` is its `ZooNetwork` (see
    `ZooNetwork.from_mapping`), whose `builder` is the returned function
    with the mapping's arguments bound.
    """
    signature = inspect.signature(builder)

    @functools.wraps(builder)
    def build_with_zoo_weights(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        weights = bound.arguments.get("weights")
        if not is_onnx_path(weights):
            return builder(*args, **kwargs)
        bound.apply_defaults()
        _check_arguments(zoo_network, bound.arguments, os.fspath(weights))
        graph = read(weights)
        verify(graph, zoo_network)
        load(graph)
        bound.arguments["weights"] = None
        return assign(builder(*bound.args, **bound.kwargs), graph,
                      zoo_network)

    zoo_network = ZooNetwork.from_mapping(build_with_zoo_weights, mapping)
    build_with_zoo_weights.zoo_network = zoo_network
    return build_with_zoo_weights


def _check_arguments(zoo_network, arguments, path):
    """The builder's arguments select the architecture the file holds."""
    wanted = zoo_network.arguments
    if all(arguments.get(k) == v for k, v in wanted.items()):
        return
    selection = ", ".join(f"{k}={v!r}" for k, v in wanted.items())
    received = ", ".join(f"{k}={arguments.get(k)!r}" for k in wanted)
    raise ValueError(
        f"`weights` is an ONNX file: the model zoo's {zoo_network.name} "
        f"loads with {selection}; pass {selection} or use "
        "`keras_lrn.applications.from_onnx_zoo(path)`. Received: "
        f"weights={path!r}, {received}")


# --------------------------------------------------------------------------
# Recognizing and verifying, before any Keras model is built
# --------------------------------------------------------------------------

def identify(graph, networks):
    """The network of `networks` whose fingerprint `graph` has."""
    found = graph.fingerprint
    for network in networks:
        if found == network.fingerprint:
            return network
    raise file_error(
        graph.path,
        "The file is not one of the ONNX model zoo networks that keras_lrn "
        f"loads ({', '.join(n.name for n in networks)}): its {found[0]} "
        f"convolutions and {found[1]} fully connected layers (first "
        f"convolution weights {found[2]}) match none of them.",
        fix="Load one of these networks' float32 files from the model zoo, "
            "or convert other graphs with another tool.")


def verify(graph, network):
    """Checks every declared weight shape, convolution, pool and LRN of
    `graph` against `network`, reading no weight; raises `ValueError` at
    the first difference."""
    where = f"The file ({network.name})"
    if graph.fingerprint != network.fingerprint:
        raise file_error(
            graph.path,
            f"The file is not the model zoo's {network.name}: it has "
            f"{graph.fingerprint[0]} convolutions and {graph.fingerprint[1]} "
            f"fully connected layers, first convolution weights "
            f"{graph.fingerprint[2]}, where {network.name} has "
            f"{network.fingerprint}. If it is another zoo network, "
            "`keras_lrn.applications.from_onnx_zoo(path)` picks the "
            "matching architecture.", fix="")
    for layer, (op, attrs, tensors) in zip(network.layers, graph.weighted):
        shapes = tuple(t.shape for t in tensors)
        defaults = _CONV_DEFAULTS if op == "Conv" else _GEMM_DEFAULTS
        attrs = dict(attrs)
        kernel = attrs.pop("kernel_shape", None)  # implied by the weights
        if kernel is not None and kernel != shapes[0][2:]:
            attrs["kernel_shape"] = kernel
        theirs = tuple(sorted({**defaults, **attrs}.items()))
        if op != layer.op or shapes != layer.shapes or theirs != layer.attributes:
            raise file_error(
                graph.path,
                f"{where}: the node of {layer.name!r} is a {op} with weights "
                f"{list(shapes)} and attributes {dict(theirs)}; the model zoo "
                f"graph has a {layer.op} with {list(layer.shapes)} and "
                f"{dict(layer.attributes)}. This conversion does not support "
                "that graph.")
    if tuple(graph.pools) != tuple(network.pools):
        raise file_error(
            graph.path,
            f"{where}: its pooling layers {graph.pools} differ from the model "
            f"zoo graph's {list(network.pools)}; this conversion does not "
            "support that graph.")
    if len(graph.lrns) != network.lrn_count:
        raise file_error(graph.path, f"{where}: {len(graph.lrns)} LRN nodes, "
                         f"expected {network.lrn_count}.")
    ours = [network.lrn[k] for k in ("size", "alpha", "beta", "bias")]
    for attrs in graph.lrns:
        theirs = {"size": None, **_LRN_DEFAULTS, **attrs}
        values = [theirs[k] for k in ("size", "alpha", "beta", "bias")]
        if values[0] != ours[0] or not np.allclose(values[1:], ours[1:],
                                                   rtol=1e-6):
            raise file_error(
                graph.path,
                f"{where}: LRN attributes {theirs} differ from the model zoo "
                f"graph's {network.lrn}; this conversion does not support "
                "that graph.")


# --------------------------------------------------------------------------
# Loading the verified weights into the builder's model
# --------------------------------------------------------------------------

def assign(model, graph, network):
    """Loads the verified `graph`'s weights into `model`, the builder's
    model of `network`; a headless model takes the convolutions only."""
    where = f"The file ({network.name})"
    load(graph)
    loaded = set()
    for layer, (_, attrs, tensors) in zip(network.layers, graph.weighted):
        targets = _common.weight_layers(model, layer.name)
        if not targets:
            continue  # a headless model: no fully connected layers
        values = _keras_values(layer, [np.asarray(t) for t in tensors])
        for g, target in enumerate(targets):
            if len(targets) > 1:  # explicit towers: split the filters
                part = [np.split(v, len(targets), axis=-1)[g] for v in values]
            else:
                part = values
            expected = [tuple(w.shape) for w in target.weights]
            if [v.shape for v in part] != expected:
                raise file_error(
                    graph.path,
                    f"{where}: layer {target.name!r} has weights of shapes "
                    f"{expected}, the file {[v.shape for v in part]}: build "
                    "the model with the zoo's input_shape (224, 224, 3) and "
                    "classes=1000.", fix="")
            target.set_weights(part)
            loaded.add(target.name)
    unloaded = [layer.name for layer in model.layers
                if layer.weights and layer.name not in loaded]
    if unloaded:
        raise file_error(
            graph.path,
            f"{where}: the file has no weights for the layers {unloaded} "
            "(e.g. normalization='batchnorm'); build the model as the file's "
            "architecture to load it.", fix="")
    return model


def _keras_values(layer, arrays):
    if layer.op == "Conv":
        return [arrays[0].transpose(2, 3, 1, 0), arrays[1]]
    kernel = arrays[0].T  # transB=1: the file stores (units, inputs)
    if layer.flattened_from is not None:
        # ONNX flattens NCHW maps channel-major; Keras' Flatten flattens
        # channels_last order (also for channels_first models).
        c, h, w = layer.flattened_from
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3)
        kernel = kernel.reshape(h * w * c, -1)
    return [kernel, arrays[1]]


def build(path, networks, classifier_activation="softmax", name=None):
    """Reads `path`'s graph, recognizes which of `networks` it holds and
    verifies it from the declarations alone, then reads its weights (each
    stored tensor once) and only then builds that network's Keras model
    with them."""
    graph = read(path)
    network = identify(graph, networks)
    verify(graph, network)
    load(graph)
    kwargs = {"classifier_activation": classifier_activation}
    if name is not None:
        kwargs["name"] = name
    return assign(network.builder(**kwargs), graph, network)
