"""Accuracy of an exported artifact against the float Keras model (the export gate's data).

The artifact runs through the edgecls runtime (``load_backend``: the same code that
runs on devices); the float model runs in Keras on the very same prepared arrays, so
the comparison is paired image by image (``edgecls.stats``). ``export.gate`` turns
it into a verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.metrics import kl_divergence, softmax
from edgecls.runtime.backends import load_backend
from edgecls.runtime.base import BackendOptions
from edgecls.stats import DropBudget, PairedDrop, compare_paired, per_class_drops

BATCH = 32


@dataclass
class Validation:
    """How one artifact compares with the float model on the same held-out images.

    Attributes:
        accuracy: top-1 accuracy of the artifact.
        float_accuracy: top-1 accuracy of the float Keras model.
        agreement: share of images where the artifact's top-1 equals the float model's.
        kl_divergence: mean KL(float || artifact) of the class probabilities.
        per_class_drop_pp: class -> accuracy lost against float in percentage points
            (``+`` is a loss, as in ``drop_pp``).
        images: number of compared images.
        paired: the drop with its 95 % interval and the changed predictions.
        per_class: class -> the same paired comparison on that class's images.
        images_by_split: split name -> number of compared images from it.
        backend_settings: what the runtime backend applied (threads, session options).
        top1: the artifact's top-1 class of each compared image.
        float_top1_probability: the artifact's probability of the float model's top-1
            class, per compared image (how much confidence quantization took from it).
    """

    accuracy: float
    float_accuracy: float
    agreement: float
    kl_divergence: float
    per_class_drop_pp: dict[str, float]
    images: int
    paired: PairedDrop | None = None
    per_class: dict[str, PairedDrop] = field(default_factory=dict)
    images_by_split: dict[str, int] = field(default_factory=dict)
    backend_settings: dict[str, Any] = field(default_factory=dict)
    top1: np.ndarray | None = field(default=None, repr=False)
    float_top1_probability: np.ndarray | None = field(default=None, repr=False)

    @property
    def drop_pp(self) -> float:
        """Accuracy lost against the float model, in percentage points (point estimate)."""
        return 100.0 * (self.float_accuracy - self.accuracy)

    def passed(self, max_drop_pp: float) -> bool:
        """True when the point estimate of the drop is within ``max_drop_pp``."""
        return DropBudget(max_drop_pp).allows(self.drop_pp)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields, with the drop in percentage points."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("paired", "per_class", "top1", "float_top1_probability")}
        out["drop_pp"] = round(self.drop_pp, 4)
        if self.paired is not None:
            out.update(self.paired.to_dict())
        return out


def artifact_probabilities(path: Path, images: np.ndarray,
                           options: BackendOptions | None = None, batch: int = BATCH,
                           ) -> tuple[np.ndarray, dict[str, Any]]:
    """Class probabilities of an artifact run by the edgecls runtime, and its settings."""
    backend = load_backend(path, options)
    meta = backend.read_metadata()
    chunks = []
    for start in range(0, len(images), batch):
        chunks.append(backend.run(images[start:start + batch].astype(np.float32)))
    scores = np.concatenate(chunks).astype(np.float32)
    if meta is not None and not meta.outputs_probabilities:
        scores = softmax(scores)
    return scores, dict(backend.settings)


def compare(probs: np.ndarray, float_probs: np.ndarray, labels: np.ndarray,
            class_names: list[str], splits: np.ndarray | None = None) -> Validation:
    """Accuracy, agreement, paired drop, per-class drop and mean KL of ``probs`` against
    the float model; ``splits`` names the split of each image (for the counts)."""
    top1, float_top1 = probs.argmax(axis=1), float_probs.argmax(axis=1)
    correct, float_correct = top1 == labels, float_top1 == labels
    per_class = per_class_drops(float_correct, correct, labels, len(class_names))
    return Validation(
        accuracy=float(np.mean(correct)),
        float_accuracy=float(np.mean(float_correct)),
        agreement=float(np.mean(top1 == float_top1)),
        kl_divergence=kl_divergence(float_probs, probs),
        per_class_drop_pp={name: round(drop.drop_pp, 3)
                          for name, drop in zip(class_names, per_class) if drop is not None},
        images=len(labels),
        paired=compare_paired(float_correct, correct),
        per_class={name: drop for name, drop in zip(class_names, per_class) if drop is not None},
        images_by_split=_split_counts(splits),
        top1=top1,
        float_top1_probability=probs[np.arange(len(top1)), float_top1],
    )


def _split_counts(splits: np.ndarray | None) -> dict[str, int]:
    if splits is None:
        return {}
    names, counts = np.unique(np.asarray(splits), return_counts=True)
    return {str(name): int(count) for name, count in zip(names, counts, strict=True)}


def validate_artifact(path: Path, images: np.ndarray, labels: np.ndarray,
                      float_probs: np.ndarray, class_names: list[str],
                      options: BackendOptions | None = None,
                      splits: np.ndarray | None = None) -> Validation:
    """Runs ``path`` through the runtime on ``images`` and compares with the float model."""
    probs, settings = artifact_probabilities(path, images, options)
    result = compare(probs, float_probs, labels, class_names, splits)
    result.backend_settings = settings
    return result
