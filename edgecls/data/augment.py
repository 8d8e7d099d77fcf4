"""Training-time augmentation with Keras preprocessing layers (never applied to val/test)."""

from __future__ import annotations

from dataclasses import dataclass


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
    """

    enabled: bool = True
    flip: bool = True
    rotation: float = 0.05
    zoom: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.1


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
    if not layers:
        return None
    return keras.Sequential(layers, name="augmentation")
