"""Where explanations show up without asking: the most confident mistakes of a run's
held-out split (``edgecls evaluate``), as one PNG of heatmaps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecls.atomic import write_bytes_atomic
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.errors import ModelError
from edgecls.explain.api import explain_image
from edgecls.explain.gradcam import KerasModel
from edgecls.explain.model import ExplainedModel
from edgecls.explain.render import (
    THUMB,
    captioned,
    contact_sheet,
    encode_png,
    explanation_tile,
    fit,
)
from edgecls.explain.rise import RiseOptions
from edgecls.rundir import RunDir
from edgecls.runtime.preprocess import read_image_bgr

GALLERY_SIZE = 8
FALLBACK_RISE = RiseOptions(masks=300)


@dataclass
class Mistake:
    """One wrong prediction: the image, its true and predicted class, the confidence."""

    path: Path
    true_index: int
    predicted_index: int
    confidence: float


def confident_mistakes(paths: list[Path], labels: np.ndarray, probabilities: np.ndarray,
                       count: int = GALLERY_SIZE) -> list[Mistake]:
    """The ``count`` wrong predictions with the highest probability for the wrong class."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:count]
    return [Mistake(paths[i], int(labels[i]), int(predicted[i]), float(probabilities[i, predicted[i]]))
            for i in wrong]


def mistakes_sheet(model: ExplainedModel, mistakes: list[Mistake]) -> np.ndarray:
    """One row per mistake: the image (true class), heatmaps of the predicted and true class.
    Grad-CAM for Keras models with a convolutional stage, else RISE."""
    rows = []
    for mistake in mistakes:
        image = read_image_bgr(mistake.path)
        classes = [mistake.predicted_index, mistake.true_index]
        try:
            explanations = explain_image(model, image, classes, "gradcam" if "gradcam" in model.methods else "rise")
        except ModelError:  # no spatial stage: the model-agnostic method works on anything
            explanations = explain_image(model, image, classes, "rise")
        tiles = [captioned(fit(image, THUMB), f"true: {model.labels[mistake.true_index]}")]
        tiles += [explanation_tile(image, e, THUMB) for e in explanations]
        rows.append(np.hstack(tiles))
    return contact_sheet(rows, columns=2 if len(rows) > 3 else 1)


def write_mistakes_gallery(run_dir: str | Path, split: str, out_png: str | Path,
                           model: KerasModel | None = None, count: int = GALLERY_SIZE) -> int:
    """Writes the gallery of a run's most confident mistakes on ``split`` to ``out_png``.

    Returns:
        The number of mistakes shown (0: nothing is written).
    """
    run = RunDir(Path(run_dir))
    model = model or KerasModel.load(run.require_model(), run.read_labels())
    items = Split.load(run.split).items(split)
    images, labels = load_arrays(items, model.input_size)
    probabilities = model.predict(images.astype(np.float32))
    mistakes = confident_mistakes([path for path, _ in items], labels, probabilities, count)
    if mistakes:
        write_bytes_atomic(out_png, encode_png(mistakes_sheet(model, mistakes)))
    return len(mistakes)
