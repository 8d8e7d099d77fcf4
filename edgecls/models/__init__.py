"""Model registry: one file per family, each registering its factories in ``MODELS``.

Every model takes a batch of RGB 0..255 float images and carries its own
normalization, so exported artifacts need only a resize in front of them.

A factory has the signature::

    factory(input_size: tuple[int, int], num_classes: int | None, include_top: bool,
            weights: str | None, **options) -> keras.Model

``build`` is the public entry point (TensorFlow is imported only when it is called).
"""

from __future__ import annotations

from typing import Any

from edgecls.registry import Registry

# Family modules register on import; they import Keras, so the registry imports them lazily.
MODELS: Registry = Registry(
    "model", modules=[f"edgecls.models.{name}"
                      for name in ("mobilenet", "efficientnet", "efficientnet_lite")])


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a wildcard pattern."""
    return MODELS.list(pattern)


def build(
    name: str,
    weights: str | None = None,
    include_top: bool = True,
    num_classes: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    **options: Any,
):
    """Builds a registered model.

    Args:
        name: registry name, e.g. ``"mobilenet_v3_small"``.
        weights: ``None`` (random init), ``"imagenet"`` or a path to a weights file.
        include_top: with ``num_classes=None``, the original ImageNet classifier;
            ``False`` with ``num_classes=N`` gives the backbone plus a new N-way head.
        num_classes: size of a new classification head.
        input_size: side or (height, width); ``None`` is the model's native size.
        **options: family-specific options (e.g. ``alpha`` for MobileNetV2, ``dropout``).

    Returns:
        A ``keras.Model`` taking RGB 0..255 images and returning class probabilities.
    """
    factory = MODELS.get(name)
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    return factory(input_size=input_size, num_classes=num_classes,
                   include_top=include_top, weights=weights, **options)
