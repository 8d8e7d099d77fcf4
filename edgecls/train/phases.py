"""Which layers train in which phase, at which learning rate.

From scratch there is one phase, everything trainable. With pretrained weights, the
``head`` phase trains only the new head on the frozen backbone, then ``finetune``
unfreezes the upper part of the backbone at a lower learning rate. BatchNorm layers stay
frozen while fine-tuning: a frozen Keras BatchNormalization runs in inference mode, so
its ImageNet statistics are not disturbed by small batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgecls.models.head import BACKBONE
from edgecls.train.config import FINE_TUNE_LR, HEAD_LR, SCRATCH_LR, TrainConfig


@dataclass(frozen=True)
class Phase:
    """One stage of training with its own optimizer and learning-rate schedule."""

    name: str  # "scratch" | "head" | "finetune"
    epochs: int
    lr: float


def plan_phases(config: TrainConfig, pretrained: bool) -> list[Phase]:
    """The phases of a run: one from scratch, head then fine-tune with pretrained weights."""
    if not pretrained:
        return [Phase("scratch", config.epochs, config.lr or SCRATCH_LR)]
    head_epochs = config.head_epochs or max(1, config.epochs // 3)
    phases = [Phase("head", head_epochs, config.lr or HEAD_LR)]
    if config.epochs > head_epochs:
        fine_tune_lr = config.fine_tune_lr or (config.lr / 10 if config.lr else FINE_TUNE_LR)
        phases.append(Phase("finetune", config.epochs - head_epochs, fine_tune_lr))
    return phases


def set_trainable(model: Any, phase: Phase, fine_tune_fraction: float,
                  bn_momentum: float = 0.9) -> None:
    """Freezes and unfreezes ``model``'s layers for ``phase``.

    From scratch every layer trains and BatchNorm gets ``bn_momentum``, so its moving
    statistics follow the weights within a short run.
    """
    import keras

    backbone = model.get_layer(BACKBONE)
    if phase.name == "scratch":
        model.trainable = True
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum
        return
    model.trainable = True
    backbone.trainable = phase.name == "finetune"
    if phase.name != "finetune":
        return
    layers = backbone.layers
    first_trainable = int(round(len(layers) * (1.0 - fine_tune_fraction)))
    for index, layer in enumerate(layers):
        frozen = index < first_trainable or isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not frozen
