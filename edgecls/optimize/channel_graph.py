"""Finds the prunable channel groups of inverted-residual / MBConv blocks and rebuilds
a Keras functional model with narrower groups, copying sliced weights.

A *channel group* is the set of tensors that share one channel axis inside a block:
the expanded channels that flow from the expand 1x1 conv through BatchNorm, activation,
padding, the depthwise conv and squeeze-and-excitation to the project 1x1 conv. It is
discovered on the model's config graph, not from layer names, so MobileNetV2/V3,
EfficientNet-B0 and EfficientNet-Lite (and nested backbones) are handled alike:

- starting at a ``DepthwiseConv2D``, channel-preserving layers (BatchNorm, activations,
  padding, pooling, reshape, SE gating ``Multiply``, ops with a constant) join the group
  both forwards and backwards;
- a ``Conv2D`` reached backwards is a *source* (its output filters are sliced): the
  expand conv and the SE expand conv; one reached forwards is a *sink* (its input
  channels are sliced): the project conv and the SE reduce conv;
- a group touching a residual ``Add``, a model output or any other layer is left
  alone, as is a block without a 1x1 expand conv (its channels come from the stem).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_UNARY = {"BatchNormalization", "Activation", "ReLU", "ZeroPadding2D", "DepthwiseConv2D",
          "GlobalAveragePooling2D", "Reshape", "Dropout", "Identity", "HardSwish",
          "HardSigmoid", "Add", "Multiply"}
_NESTED = {"Functional", "Model", "Sequential"}


@dataclass
class ChannelGroup:
    """One prunable block: the layers sharing its expanded channel axis.

    Attributes:
        path: names of the nested models holding the block ("" for the top level).
        expand: the expand 1x1 conv (feeds the depthwise conv).
        channels: width of the group.
        sources: convs whose output filters are sliced (expand, SE expand).
        sinks: convs whose input channels are sliced (project, SE reduce).
        members: channel-preserving layers in the group (BatchNorm, depthwise, ...).
        expand_bn: the BatchNorm right after the expand conv, if any.
        sink_bn: for each sink, the BatchNorm that is its only consumer, if any.
    """

    path: tuple[str, ...]
    expand: str
    channels: int
    sources: list[str] = field(default_factory=list)
    sinks: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    expand_bn: str | None = None
    sink_bn: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """A unique readable name, e.g. ``backbone/block2a_expand_conv``."""
        return "/".join((*self.path, self.expand))


class _Graph:
    """Producer/consumer view of one functional model config."""

    def __init__(self, config: dict) -> None:
        self.layers = {entry["name"]: entry for entry in config["layers"]}
        self.inputs: dict[str, list[str]] = {}
        self.consumers: dict[str, list[str]] = {name: [] for name in self.layers}
        self.called_once = {name for name, e in self.layers.items() if len(e["inbound_nodes"]) <= 1}
        for name, entry in self.layers.items():
            sources = [t for node in entry["inbound_nodes"] for t in _tensor_sources(node)]
            self.inputs[name] = sources
            for source in sources:
                self.consumers.setdefault(source, []).append(name)
        self.outputs = {t[0] for t in _flatten_outputs(config.get("output_layers", []))}

    def cls(self, name: str) -> str:
        return self.layers[name]["class_name"]

    def conf(self, name: str) -> dict:
        return self.layers[name]["config"]

    def is_pointwise(self, name: str) -> bool:
        conf = self.conf(name)
        return self.cls(name) == "Conv2D" and tuple(conf["kernel_size"]) == (1, 1) \
            and conf.get("groups", 1) == 1


def _tensor_sources(node: Any) -> list[str]:
    """Names of the layers whose outputs a serialized call node consumes."""
    found: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                found.append(value["config"]["keras_history"][0])
            else:
                for item in value.values():
                    visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    visit(node.get("args", []) if isinstance(node, dict) else node)
    if isinstance(node, dict):
        visit(node.get("kwargs", {}))
    return found


def _flatten_outputs(value: Any) -> list[list]:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value]
    return [item for sub in (value or []) for item in _flatten_outputs(sub)]


def find_groups(config: dict, path: tuple[str, ...] = ()) -> list[ChannelGroup]:
    """Every prunable channel group of a functional model config (nested models too)."""
    graph = _Graph(config)
    groups = []
    for name, entry in graph.layers.items():
        if entry["class_name"] in _NESTED:
            groups += find_groups(entry["config"], (*path, name))
    seen: set[str] = set()
    for name in graph.layers:
        if graph.cls(name) == "DepthwiseConv2D" and name not in seen:
            group = _grow(graph, name, path)
            if group is not None:
                seen.update(group.members)
                groups.append(group)
    return groups


def _grow(graph: _Graph, start: str, path: tuple[str, ...]) -> ChannelGroup | None:
    """The channel group around depthwise conv ``start``, or None if it is not prunable."""
    members, sources, sinks = {start}, set(), set()
    pending = [start]
    while pending:
        name = pending.pop()
        # Upstream 1x1 convs feed the channels (sources), downstream ones consume them (sinks).
        for neighbours, ends in ((graph.inputs[name], sources), (graph.consumers.get(name, []), sinks)):
            for other in neighbours:
                if other in members or other in ends:
                    continue
                if graph.cls(other) == "Conv2D":
                    ends.add(other)
                elif _channel_preserving(graph, other):
                    members.add(other)
                    pending.append(other)
                else:
                    return None
    return _validated(graph, start, path, members, sources, sinks)


def _channel_preserving(graph: _Graph, name: str) -> bool:
    cls = graph.cls(name)
    if cls not in _UNARY or name not in graph.called_once:
        return False
    if cls == "Add":  # x + constant only: a two-tensor Add is a residual connection
        return len(graph.inputs[name]) == 1
    if cls == "DepthwiseConv2D":
        return graph.conf(name).get("depth_multiplier", 1) == 1
    return True


def _validated(graph: _Graph, start: str, path: tuple[str, ...], members: set,
               sources: set, sinks: set) -> ChannelGroup | None:
    if members & graph.outputs or not sinks or sources & sinks:
        return None
    if not all(graph.is_pointwise(n) and n in graph.called_once for n in sources | sinks):
        return None
    expand = _expand_of(graph, start, sources)
    widths = {graph.conf(s)["filters"] for s in sources}
    if expand is None or len(widths) != 1:
        return None
    bn = next((c for c in graph.consumers[expand] if graph.cls(c) == "BatchNormalization"), None)
    sink_bn = {sink: after[0] for sink in sinks
               if len(after := graph.consumers.get(sink, [])) == 1
               and graph.cls(after[0]) == "BatchNormalization"}
    order = list(graph.layers)
    return ChannelGroup(path=path, expand=expand, channels=widths.pop(),
                        sources=sorted(sources, key=order.index),
                        sinks=sorted(sinks, key=order.index),
                        members=sorted(members, key=order.index), expand_bn=bn, sink_bn=sink_bn)


def _expand_of(graph: _Graph, start: str, sources: set) -> str | None:
    """The source conv reached from the depthwise conv through single-input layers."""
    name = start
    while True:
        parents = graph.inputs[name]
        if len(parents) != 1:
            return None
        name = parents[0]
        if name in sources:
            return name
        if graph.cls(name) == "Conv2D":
            return None


def sub_model(model: Any, path: tuple[str, ...]) -> Any:
    """The nested model at ``path`` inside ``model`` (``model`` itself for ``()``)."""
    for name in path:
        model = model.get_layer(name)
    return model


def narrowed_config(config: dict, groups: list[ChannelGroup], keep: dict[str, np.ndarray],
                    path: tuple[str, ...] = ()) -> dict:
    """A deep copy of a functional config with each group narrowed to ``len(keep[key])``."""
    config = copy.deepcopy(config)
    _narrow_in_place(config, groups, keep, path)
    return config


def _narrow_in_place(config: dict, groups: list[ChannelGroup], keep: dict[str, np.ndarray],
                     path: tuple[str, ...]) -> None:
    layers = {entry["name"]: entry for entry in config["layers"]}
    for name, entry in layers.items():
        if entry["class_name"] in _NESTED:
            _narrow_in_place(entry["config"], groups, keep, (*path, name))
    for group in groups:
        if group.path != path:
            continue
        width = len(keep[group.key])
        for name in (*group.sources, *group.sinks, *group.members):
            layers[name].pop("build_config", None)  # rebuilt from the narrower input
        for source in group.sources:
            layers[source]["config"]["filters"] = width
        for member in group.members:
            conf = layers[member]["config"]
            if layers[member]["class_name"] == "Reshape":
                conf["target_shape"] = [*conf["target_shape"][:-1], width]


def copy_sliced_weights(old: Any, new: Any, groups: list[ChannelGroup],
                        keep: dict[str, np.ndarray], path: tuple[str, ...] = ()) -> None:
    """Copies every layer's weights from ``old`` to the narrowed ``new`` model by name,
    slicing the channels of the groups (nested models handled recursively)."""
    slices = _slices_at(groups, keep, path)
    for layer in new.layers:
        source = old.get_layer(layer.name)
        if hasattr(layer, "layers") and layer.__class__.__name__ in _NESTED:
            copy_sliced_weights(source, layer, groups, keep, (*path, layer.name))
            continue
        weights = source.get_weights()
        if layer.name in slices:
            role, index = slices[layer.name]
            weights = _slice(source, weights, role, index)
        if weights:
            layer.set_weights(weights)
        if hasattr(layer, "finalize_state") and layer.__class__.__name__ == "Normalization":
            layer.finalize_state()


def _slices_at(groups: list[ChannelGroup], keep: dict[str, np.ndarray],
               path: tuple[str, ...]) -> dict[str, tuple[str, np.ndarray]]:
    slices: dict[str, tuple[str, np.ndarray]] = {}
    for group in (g for g in groups if g.path == path):
        index = keep[group.key]
        slices.update({n: ("out", index) for n in group.sources})
        slices.update({n: ("in", index) for n in group.sinks})
        slices.update({n: ("channel", index) for n in group.members})
    return slices


def _slice(layer: Any, weights: list[np.ndarray], role: str, index: np.ndarray) -> list:
    """Weights of one layer restricted to the kept channels."""
    kind = layer.__class__.__name__
    if role == "out":  # Conv2D kernel (kh, kw, in, out) and bias (out,)
        return [w[..., index] for w in weights]
    if role == "in":
        return [weights[0][:, :, index, :], *weights[1:]]
    if kind == "DepthwiseConv2D":  # kernel (kh, kw, channels, 1), bias (channels,)
        return [weights[0][:, :, index, :], *(w[index] for w in weights[1:])]
    return [w[index] for w in weights]  # BatchNorm gamma/beta/mean/variance
