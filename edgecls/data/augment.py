"""Training-time augmentation with Keras preprocessing layers (never applied to val/test).

Per-image layers (flip, rotation, zoom, brightness, contrast, RandAugment) run in
``build_augmentation``; mixup and cutmix blend whole batches, images and one-hot labels
together, in ``build_mixing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from edgecls.errors import ConfigError


@dataclass
class AugmentConfig:
    """Augmentation strengths; 0 (or False) turns one off.

    Attributes:
        enabled: master switch.
        flip: random horizontal flip.
        rotation: max rotation as a fraction of a full turn (0.05 = +-18 degrees).
        zoom: max zoom in/out as a fraction of the image size (crop-like).
        brightness: max brightness shift as a fraction of the 0..255 range.
        contrast: max contrast change factor.
        randaugment: RandAugment magnitude in [0, 1] (two random ops per image among
            colour, contrast, shear, translation, solarize...); 0: off.
        mixup: mixup strength, the alpha of the Beta(alpha, alpha) blending weight
            (0.2 is common); 0: off.
        cutmix: cutmix strength, the Beta alpha of the pasted patch's area (1.0 is
            common); 0: off. With both on, each batch gets one of the two at random.
    """

    enabled: bool = True
    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.1
    randaugment: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0

    def validate(self) -> AugmentConfig:
        """Checks ranges; returns ``self``. Raises ConfigError on a bad value."""
        for name in ("rotation", "zoom", "brightness", "contrast", "mixup", "cutmix"):
            if getattr(self, name) < 0:
                raise ConfigError(f"invalid augment config: {name} must not be negative",
                                  "0 turns it off")
        if not 0 <= self.randaugment <= 1:
            raise ConfigError("invalid augment config: randaugment must be in [0, 1]",
                              "0 turns it off; 0.5 is a medium magnitude")
        return self


def build_augmentation(config: AugmentConfig, seed: int = 0):
    """A ``keras.Sequential`` of random layers for RGB 0..255 float images, or None."""
    import keras

    if not config.enabled:
        return None
    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed + 1))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed + 2))
    if config.brightness:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed + 3))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 4))
    if config.randaugment:
        layers.append(keras.layers.RandAugment(value_range=(0, 255), num_ops=2,
                                               factor=config.randaugment, seed=seed + 5))
    if not layers:
        return None
    return keras.Sequential(layers, name="augmentation")


def build_mixing(config: AugmentConfig, seed: int = 0) -> Callable[[Any, Any], tuple[Any, Any]] | None:
    """A tf.data map function blending a batch of (float images, one-hot labels) with a
    shuffled copy of itself by mixup and/or cutmix, or None when both are off."""
    import keras
    import tensorflow as tf

    if not config.enabled:
        return None
    mixers = []
    if config.mixup:
        mixers.append(keras.layers.MixUp(alpha=config.mixup, seed=seed + 6))
    if config.cutmix:
        mixers.append(keras.layers.CutMix(factor=config.cutmix, seed=seed + 7))
    if not mixers:
        return None

    def blend(mixer: Any, images: Any, labels: Any) -> tuple[Any, Any]:
        mixed = mixer({"images": images, "labels": labels}, training=True)
        return mixed["images"], tf.cast(mixed["labels"], labels.dtype)

    def mix(images: Any, labels: Any) -> tuple[Any, Any]:
        if len(mixers) == 1:
            return blend(mixers[0], images, labels)
        return tf.cond(tf.random.uniform([]) < 0.5, lambda: blend(mixers[0], images, labels),
                       lambda: blend(mixers[1], images, labels))

    return mix
