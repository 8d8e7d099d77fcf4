"""EfficientNet-B0 from ``keras.applications``.

Keras' EfficientNet normalizes inside (``Rescaling(1/255)`` then ``Normalization``).
With ImageNet weights Keras adds one more ``Rescaling`` that other builds lack; edgecls
builds the same layers for every weights choice and sets the ``Normalization`` layer to
the ImageNet mean and variance itself, so every EfficientNet-B0 has one architecture
and ``.weights.h5`` files move between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgecls.errors import ModelError
from edgecls.models import MODELS
from edgecls.models.weights import (
    ImagenetFile,
    finish_model,
    imagenet_weights_path,
    parse_weights,
)

DEFAULT_SIZE = (224, 224)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@MODELS.register("efficientnet_b0")
def efficientnet_b0(input_size: tuple[int, int] | None, num_classes: int | None,
                    include_top: bool, weights: str | Path | None,
                    dropout: float = 0.2) -> Any:
    """EfficientNet-B0 taking RGB 0..255 (ImageNet mean/std normalization inside)."""
    import keras

    size = tuple(input_size or DEFAULT_SIZE)
    if min(size) < 32:
        raise ModelError(f"input size {size[0]}x{size[1]} is too small",
                         "EfficientNet needs at least 32x32 pixels")
    spec = parse_weights(weights)
    top = include_top and num_classes is None
    image = keras.Input(shape=(*size, 3), name="image")
    net = keras.applications.EfficientNetB0(input_tensor=image, include_top=top, weights=None)
    if spec == "imagenet":
        net.load_weights(str(imagenet_weights_path(_imagenet_file(top))))
    _set_imagenet_normalization(net)
    return finish_model(net, "efficientnet_b0", num_classes, dropout, spec)


def _set_imagenet_normalization(net: Any) -> None:
    """Makes the input ``Normalization`` compute (x/255 - mean) / std."""
    import keras
    import numpy as np

    norm = next(layer for layer in net.layers
                if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign(np.array(IMAGENET_MEAN, "float32"))
    norm.adapt_variance.assign(np.square(np.array(IMAGENET_STD, "float32")))
    norm.finalize_state()


def _imagenet_file(top: bool) -> ImagenetFile:
    from keras.src.applications.efficientnet import BASE_WEIGHTS_PATH, WEIGHTS_HASHES

    name = "efficientnetb0.h5" if top else "efficientnetb0_notop.h5"
    return ImagenetFile(name, BASE_WEIGHTS_PATH + name, WEIGHTS_HASHES["b0"][0 if top else 1])
