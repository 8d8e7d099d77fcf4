"""Size and compute of a Keras model: parameters, multiply-accumulates, float32 bytes.

MACs are counted from layer shapes for one image through every Conv2D, DepthwiseConv2D
and Dense layer; structured pruning reports them and aims ``--mac-reduction`` at them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecls.optimize.channel_graph import ChannelGroup, sub_model


@dataclass
class ModelCost:
    """Size and compute of one model (MACs counted from layer shapes, batch 1)."""

    parameters: int
    macs: int
    weights_bytes: int  # float32


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one image through every Conv2D, DepthwiseConv2D and Dense."""
    import keras

    total = 0
    for layer in _leaf_layers(model):
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                  keras.layers.Dense)):
            continue
        kernel = layer.get_weights()[0]
        out_shape = tuple(layer.output.shape)
        if isinstance(layer, keras.layers.Dense):
            total += int(np.prod(out_shape[1:-1] or (1,))) * kernel.size
        else:  # conv kernel (kh, kw, in/groups, out); depthwise (kh, kw, in, multiplier)
            total += int(np.prod(out_shape[1:3])) * kernel.size
    return total


def model_cost(model: Any) -> ModelCost:
    """Parameters, MACs and float32 weight bytes of ``model``."""
    parameters = int(model.count_params())
    return ModelCost(parameters=parameters, macs=count_macs(model), weights_bytes=4 * parameters)


def group_macs(model: Any, groups: list[ChannelGroup]) -> list[int]:
    """MACs of the convs whose cost scales with each group's width."""
    macs = []
    for group in groups:
        layers = {layer.name: layer for layer in sub_model(model, group.path).layers}
        names = (*group.sources, *group.sinks, *group.members)  # members may be bare ops
        macs.append(sum(count_macs_layer(layers[n]) for n in names if n in layers))
    return macs


def count_macs_layer(layer: Any) -> int:
    """MACs of one layer (0 for layers without a conv/dense kernel)."""
    import keras

    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        return 0
    return int(np.prod(tuple(layer.output.shape)[1:3])) * layer.get_weights()[0].size


def _leaf_layers(model: Any) -> list[Any]:
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if not hasattr(layer, "layers")]
