"""Which model and initial weights a run trains when its config leaves them open.

``model`` and ``weights`` left unset (``None``) resolve as follows; anything set
explicitly is kept as given:

- neither set: EfficientNet-Lite0 with ImageNet weights when the ``pretrained`` extra
  is installed (the weights ship in a pip package, so no download is needed);
  otherwise MobileNetV3-Small from scratch, with a warning naming what to install;
- ``model`` set, ``weights`` unset: ImageNet weights when the model's weights ship in
  an installed package (EfficientNet-Lite0/1/2), else from scratch. Keras families never
  download ImageNet weights implicitly: ask with ``weights: imagenet``;
- ``weights`` set, ``model`` unset: ``imagenet`` gets EfficientNet-Lite0 when its
  package is installed, else MobileNetV3-Small (Keras downloads its weights once);
  ``none`` or a file gets MobileNetV3-Small, the from-scratch default.

The resolved names are written into the run's ``config.yaml``, so a resumed run, an
export or a colleague reading the run sees what was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edgecls.models.lite_weights import INSTALL_HINT, PACKAGES, imagenet_weights_installed
from edgecls.models.weights import parse_weights
from edgecls.train.config import TrainConfig

PRETRAINED_MODEL = "efficientnet_lite0"
SCRATCH_MODEL = "mobilenet_v3_small"


@dataclass(frozen=True)
class ModelChoice:
    """The model and weights a run trains, and why.

    Attributes:
        model: registry name.
        weights: ``"imagenet"``, ``"none"`` or a weights file path.
        reason: one line saying where the choice came from.
        warning: one line when a stronger default was unavailable: what is missing and
            how to install it (``None`` otherwise).
    """

    model: str
    weights: str
    reason: str
    warning: str | None = None

    def describe(self) -> str:
        """One line for the start of a run, e.g. ``model efficientnet_lite0, weights imagenet (...)``."""
        return f"model {self.model}, weights {self.weights} ({self.reason})"


def choose_model(model: str | None, weights: str | None) -> ModelChoice:
    """Resolves unset ``model``/``weights`` (see the module docstring)."""
    if model is not None and weights is not None:
        return ModelChoice(model, weights, "as configured")
    if model is not None:
        return _weights_for(model)
    if weights is None:
        return _default_pair()
    if parse_weights(weights) == "imagenet":
        if imagenet_weights_installed(PRETRAINED_MODEL):
            return ModelChoice(PRETRAINED_MODEL, weights, "default model for ImageNet weights")
        return ModelChoice(SCRATCH_MODEL, weights, "ImageNet weights from the Keras cache",
                           _missing_package_warning(f"using {SCRATCH_MODEL} with Keras' ImageNet weights"))
    return ModelChoice(SCRATCH_MODEL, weights,
                       "default model for this weights choice; pass --model for another family")


def resolve_model_choice(config: TrainConfig) -> tuple[TrainConfig, ModelChoice]:
    """``config`` with ``model`` and ``weights`` filled in, and the choice made."""
    choice = choose_model(config.model, config.weights)
    return dataclasses.replace(config, model=choice.model, weights=choice.weights), choice


def _default_pair() -> ModelChoice:
    if imagenet_weights_installed(PRETRAINED_MODEL):
        return ModelChoice(PRETRAINED_MODEL, "imagenet",
                           "default: ImageNet weights from the pretrained extra")
    return ModelChoice(SCRATCH_MODEL, "none", "default without the pretrained extra: from scratch",
                       _missing_package_warning(f"training {SCRATCH_MODEL} from scratch instead"))


def _weights_for(model: str) -> ModelChoice:
    if model not in PACKAGES:
        return ModelChoice(model, "none", "from scratch; --weights imagenet starts from ImageNet "
                                          "weights, downloaded once into the Keras cache")
    if imagenet_weights_installed(model):
        return ModelChoice(model, "imagenet", "ImageNet weights from the pretrained extra")
    return ModelChoice(model, "none", "from scratch: its ImageNet weights are not installed",
                       f"{model}'s ImageNet weights need the package {PACKAGES[model]}, which is "
                       f"not installed: training from scratch; {INSTALL_HINT}")


def _missing_package_warning(fallback: str) -> str:
    return (f"EfficientNet-Lite0's ImageNet weights (package {PACKAGES[PRETRAINED_MODEL]}) are not "
            f"installed: {fallback}; {INSTALL_HINT}")
