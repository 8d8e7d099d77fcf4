"""MobileNetV2 and MobileNetV3 (small, large) from ``keras.applications``.

Each network takes RGB 0..255 and normalizes inside: MobileNetV2 through a
``Rescaling`` to [-1, 1] in front of it, MobileNetV3 through its own
``include_preprocessing`` layer. The layers form one flat network (no nested model),
so fine-tuning can unfreeze its upper layers one by one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from edgecls.errors import ModelError
from edgecls.models import MODELS
from edgecls.models.weights import (
    ImagenetFile,
    finish_model,
    imagenet_weights_path,
    parse_weights,
)

DEFAULT_SIZE = (224, 224)
V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
V2_SIZES = (96, 128, 160, 192, 224)
V3_ALPHAS = (0.75, 1.0)


@MODELS.register("mobilenet_v2")
def mobilenet_v2(input_size: tuple[int, int] | None, num_classes: int | None,
                 include_top: bool, weights: str | Path | None,
                 alpha: float = 1.0, dropout: float = 0.2) -> Any:
    """MobileNetV2 with width multiplier ``alpha`` (input scaled to [-1, 1] inside)."""
    import keras

    size = tuple(input_size or DEFAULT_SIZE)
    spec = parse_weights(weights)
    top = include_top and num_classes is None
    weights_file = _v2_imagenet_file(float(alpha), size, top) if spec == "imagenet" else None

    def network(image: Any) -> Any:
        scaled = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(image)
        return keras.applications.MobileNetV2(input_tensor=scaled, alpha=alpha,
                                              include_top=top, weights=None)

    net = _flat_network(size, network, weights_file)
    return finish_model(net, "mobilenet_v2", num_classes, dropout, spec)


@MODELS.register("mobilenet_v3_small")
def mobilenet_v3_small(input_size: tuple[int, int] | None, num_classes: int | None,
                       include_top: bool, weights: str | Path | None,
                       alpha: float = 1.0, dropout: float = 0.2) -> Any:
    """MobileNetV3-Small with width multiplier ``alpha``."""
    return _mobilenet_v3("small", input_size, num_classes, include_top, weights,
                         alpha, dropout)


@MODELS.register("mobilenet_v3_large")
def mobilenet_v3_large(input_size: tuple[int, int] | None, num_classes: int | None,
                       include_top: bool, weights: str | Path | None,
                       alpha: float = 1.0, dropout: float = 0.2) -> Any:
    """MobileNetV3-Large with width multiplier ``alpha``."""
    return _mobilenet_v3("large", input_size, num_classes, include_top, weights,
                         alpha, dropout)


def _mobilenet_v3(kind: str, input_size: tuple[int, int] | None, num_classes: int | None,
                  include_top: bool, weights: str | Path | None, alpha: float,
                  dropout: float) -> Any:
    import keras

    size = tuple(input_size or DEFAULT_SIZE)
    spec = parse_weights(weights)
    top = include_top and num_classes is None
    weights_file = _v3_imagenet_file(kind, float(alpha), top) if spec == "imagenet" else None
    application = {"small": keras.applications.MobileNetV3Small,
                   "large": keras.applications.MobileNetV3Large}[kind]

    def network(image: Any) -> Any:
        return application(input_tensor=image, alpha=alpha, include_top=top, weights=None,
                           include_preprocessing=True)

    net = _flat_network(size, network, weights_file)
    return finish_model(net, f"mobilenet_v3_{kind}", num_classes, dropout, spec)


def _flat_network(size: tuple[int, int], network: Callable[[Any], Any],
                  weights_file: ImagenetFile | None) -> Any:
    """Builds ``network`` on an RGB 0..255 input and loads ImageNet weights if asked."""
    import keras

    if min(size) < 32:
        raise ModelError(f"input size {size[0]}x{size[1]} is too small",
                         "MobileNet needs at least 32x32 pixels")
    image = keras.Input(shape=(*size, 3), name="image")
    net = network(image)
    if weights_file is not None:
        net.load_weights(str(imagenet_weights_path(weights_file)))
    return net


def _v2_imagenet_file(alpha: float, size: tuple[int, ...], top: bool) -> ImagenetFile:
    from keras.src.applications.mobilenet_v2 import BASE_WEIGHT_PATH

    if alpha not in V2_ALPHAS:
        raise ModelError(f"no ImageNet weights for mobilenet_v2 with alpha={alpha}",
                         f"use alpha in {V2_ALPHAS} or --weights none")
    rows = size[0] if size[0] == size[1] and size[0] in V2_SIZES else 224
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}"
    name += ".h5" if top else "_no_top.h5"
    return ImagenetFile(name, BASE_WEIGHT_PATH + name)


def _v3_imagenet_file(kind: str, alpha: float, top: bool) -> ImagenetFile:
    from keras.src.applications.mobilenet_v3 import BASE_WEIGHT_PATH, WEIGHTS_HASHES

    if alpha not in V3_ALPHAS:
        raise ModelError(f"no ImageNet weights for mobilenet_v3_{kind} with alpha={alpha}",
                         f"use alpha in {V3_ALPHAS} or --weights none")
    key = f"{kind}_224_{alpha}_float"
    name = f"weights_mobilenet_v3_{key}.h5" if top else f"weights_mobilenet_v3_{key}_no_top_v2.h5"
    return ImagenetFile(name, BASE_WEIGHT_PATH + name, WEIGHTS_HASHES[key][0 if top else 1])
