"""The float model's top-1 on exactly the images bench scored, from the export's predictions.

``edgecls export`` writes ``predictions.json`` beside its artifacts: the float model's top-1
on every held-out image of the run. When bench scores an artifact of that export (its bytes
are the ones validated) on images that are all among them, the float model's hits on those
same images give the report its "drop vs float" and a paired interval without an fp32 artifact.
Images are matched by their absolute path (the dataset folder the export recorded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecls.export.predictions import PREDICTIONS_NAME, HeldOutPredictions, load_predictions

SOURCE = "export predictions.json"


def float_on_same_images(model: str | Path, classes: list[str], paths: list[str],
                         expected: np.ndarray) -> dict[str, Any] | None:
    """``{source, images, top1, correct_bits}`` of the float model on ``paths``, or None.

    Args:
        model: the artifact scored; ``predictions.json`` must sit beside it and list its bytes.
        classes: the artifact's class names (the export's must be the same).
        paths: the images scored, in scoring order.
        expected: the class index each image should get, in the same order.

    Returns None when there is no such file, the artifact is not one it validated, or an
    image is not among its held-out images (or carries another label there).
    """
    predictions = load_predictions(Path(model).parent / PREDICTIONS_NAME)
    if predictions is None or predictions.classes != list(classes) or predictions.for_artifact(Path(model)) is None:
        return None
    positions = _positions(predictions, paths)
    if positions is None or not np.array_equal(predictions.labels[positions], expected):
        return None
    correct = predictions.float_top1[positions] == expected
    return {"source": SOURCE, "images": int(len(positions)), "top1": round(float(correct.mean()), 6),
            "correct_bits": np.packbits(correct).tobytes().hex()}


def _positions(predictions: HeldOutPredictions, paths: list[str]) -> np.ndarray | None:
    root = Path(predictions.root)
    index = {str((root / rel).resolve()): i for i, rel in enumerate(predictions.paths)}
    found = [index.get(str(Path(path).resolve())) for path in paths]
    if not found or any(i is None for i in found):
        return None
    return np.asarray(found, dtype=np.int64)
