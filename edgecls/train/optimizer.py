"""The optimizer of a training phase, with layer-wise learning-rate decay for fine-tuning.

With ``layer_lr_decay: d`` (< 1) the fine-tune phase gives the head the phase's learning
rate and each earlier block of the backbone that rate times ``d ** depth``, so the
generic low-level ImageNet features move less than the task-specific upper ones.

Blocks are the backbone's **resolution stages**, counted from the top: depth 1 is the
last stage (output stride 32, with the final 1x1 ``top`` conv), depth 2 the stage before
(stride 16), and so on down to the stem (stride 2: depth 5 for MobileNet and
EfficientNet backbones). An inverted-residual block (``block3_*``, ``block2a_*``,
``expanded_conv_4_*``, ``block_6_*``) belongs whole to the stage its strided depthwise
conv leads into (with its squeeze-excite convs). Per-layer
decay would give the stem of a 140-layer backbone ``d ** 140``; per-stage decay keeps
the spread at ``d ** 5`` (0.17 at d = 0.7).

The learning rate is scaled per variable inside the optimizer's update, not by scaling
gradients (Adam divides the gradient scale away), and so is AdamW's decoupled weight
decay (as with per-group rates in other frameworks).
"""

from __future__ import annotations

import re
from typing import Any

import keras
from keras import ops

from edgecls.models.head import BACKBONE
from edgecls.train.config import TrainConfig
from edgecls.train.phases import Phase

# The name prefix shared by the layers of one inverted-residual block: EfficientNet-Lite
# "block3_", EfficientNet "block2a_", MobileNetV2 "block_6_", MobileNetV3 "expanded_conv_4_".
_BLOCK_PREFIX = re.compile(r"^(block_?\d+[a-z]?|expanded_conv(?:_\d+)?)_")


def make_optimizer(model: Any, phase: Phase, config: TrainConfig, schedule: Any) -> Any:
    """AdamW for ``phase``; ``LayerwiseAdamW`` in the fine-tune phase when
    ``config.layer_lr_decay`` is below 1."""
    options: dict[str, Any] = {"learning_rate": schedule, "weight_decay": config.weight_decay}
    if config.ema:
        options.update(use_ema=True, ema_momentum=config.ema)
    if phase.name == "finetune" and config.layer_lr_decay < 1:
        return LayerwiseAdamW(layer_scales=layer_scales(model, config.layer_lr_decay), **options)
    return keras.optimizers.AdamW(**options)


def layer_scales(model: Any, decay: float) -> dict[str, float]:
    """Learning-rate factor of every backbone layer with weights, by layer name:
    ``decay ** depth`` (see the module docstring); layers outside the backbone get 1."""
    return {name: decay ** depth for name, depth in backbone_depths(model).items()}


def backbone_depths(model: Any) -> dict[str, int]:
    """Depth of each backbone layer with weights: 1 for the last resolution stage, one
    more for every stage before it. A stage starts with each block holding a strided
    layer; layers before the first one (preprocessing) count with the stem."""
    units = _units(model.get_layer(BACKBONE))
    stages = max(sum(downsamples for _, downsamples in units), 1)
    depths, stage = {}, 0
    for layers, downsamples in units:
        stage += downsamples
        depths.update((name, stages - max(stage, 1) + 1) for name in layers)
    return depths


def _units(backbone: Any) -> list[tuple[list[str], bool]]:
    """The backbone's blocks in order: the names of their layers with weights, and
    whether they downsample (hold a layer with a stride above 1)."""
    units: dict[str, tuple[list[str], list[bool]]] = {}
    for layer in backbone.layers:
        layers, strided = units.setdefault(_unit_of(layer.name), ([], []))
        if layer.weights:
            layers.append(layer.name)
        strided.append(any(int(step) > 1 for step in getattr(layer, "strides", None) or ()))
    return [(layers, any(strided)) for layers, strided in units.values()]


def _unit_of(layer_name: str) -> str:
    match = _BLOCK_PREFIX.match(layer_name)
    return match.group(1) if match else layer_name


@keras.saving.register_keras_serializable(package="edgecls")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate (and decoupled weight decay) is multiplied per variable
    by the factor of the layer that owns it.

    Args:
        layer_scales: factor by layer name (a variable ``"stem_conv/kernel"`` belongs to
            ``"stem_conv"``); variables of other layers get 1.
        **kwargs: ``keras.optimizers.AdamW`` arguments.

    Registered with Keras and its factors are part of its config, so a checkpoint
    compiled with it loads and resumes with the same rates.
    """

    def __init__(self, layer_scales: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer_scales = {str(k): float(v) for k, v in (layer_scales or {}).items()}
        self._variable_scales: list[float] = []

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._variable_scales = [self.scale_of(variable) for variable in var_list]

    def scale_of(self, variable: Any) -> float:
        """The factor of ``variable``, from the longest layer path that has one."""
        owner = variable.path.rsplit("/", 1)[0] if "/" in variable.path else ""
        while owner:
            if owner in self.layer_scales:
                return self.layer_scales[owner]
            owner = owner.rsplit("/", 1)[0] if "/" in owner else ""
        return 1.0

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        scale = self._variable_scales[self._get_variable_index(variable)]
        if scale != 1.0:
            learning_rate = ops.multiply(learning_rate, scale)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            rate = ops.cast(learning_rate, variable.dtype)
            self.assign_sub(variable, variable * ops.cast(self.weight_decay, variable.dtype) * rate)
        super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables: list[Any]) -> None:
        """Nothing: ``update_step`` applies the weight decay, at each variable's rate."""

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer_scales": dict(self.layer_scales)}
