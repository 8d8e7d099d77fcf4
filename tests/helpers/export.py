"""A tiny run's float model made ready for the exporters (shared by the export tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.runs import SIZE


@dataclass
class Prepared:
    """The float model of the tiny run, ready for every exporter."""

    source: object
    images: np.ndarray
    labels: np.ndarray
    float_probs: np.ndarray
    calibration: np.ndarray


def prepare_run(tiny_run: Path) -> Prepared:
    """Exports the run's float model to a SavedModel and prepares every image of its split."""
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.export.base import ExportSource
    from edgecls.export.metadata import base_metadata
    from edgecls.export.validate import float_probabilities
    from edgecls.models.float_model import load_float_model

    model = load_float_model(tiny_run / "best.keras")
    model.export(str(tiny_run / "saved_model"), verbose=False)
    split = Split.load(tiny_run / "split.json")
    items = [item for subset in ("train", "val", "test") for item in split.items(subset)]
    images, labels = load_arrays(items, (SIZE, SIZE))
    images = images.astype(np.float32)
    meta = base_metadata(split.labels, (SIZE, SIZE), model.name)
    source = ExportSource(model, tiny_run / "saved_model", meta, tiny_run)
    return Prepared(source, images, labels, float_probabilities(model, images), images[::2])
