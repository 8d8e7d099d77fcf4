"""A tiny run's float model made ready for the exporters (shared by the export tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.runs import CLASSES, SIZE

# What NNCF 3.4's `track` bars print during nncf.quantize (statistics, bias correction):
# none of it may reach the output of `edgecls export` (edgecls draws its own progress)
NNCF_BAR_TEXT = ("Statistics collection", "Applying Fast Bias correction", "Collecting outputs",
                 "Collecting metrics", "Calculating ranking scores")

# Per precision: largest max |p - p_float| (None: not checked), least top-1 agreement,
# largest accuracy drop in percentage points.
THRESHOLDS = {
    "fp32": (1e-4, 1.0, 0.0),
    "fp16": (2e-2, 0.97, 3.0),
    "dynamic": (None, 0.95, 5.0),
    "int8": (None, 0.95, 5.0),
}


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
    from edgecls.models.float_model import load_float_model, predict

    model = load_float_model(tiny_run / "best.keras")
    model.export(str(tiny_run / "saved_model"), verbose=False)
    split = Split.load(tiny_run / "split.json")
    items = [item for subset in ("train", "val", "test") for item in split.items(subset)]
    images, labels = load_arrays(items, (SIZE, SIZE))
    images = images.astype(np.float32)
    meta = base_metadata(split.labels, (SIZE, SIZE), model.name)
    source = ExportSource(model, tiny_run / "saved_model", meta, tiny_run)
    return Prepared(source, images, labels, predict(model, images), images[::2])


def assert_matches_float(path: Path, precision: str, prepared: Prepared) -> None:
    """The runtime reads the metadata back and the scores agree with the float model."""
    from edgecls.export.validate import compare
    from edgecls.runtime import Classifier

    classifier = Classifier(path)
    meta = classifier.metadata
    assert meta.labels == sorted(CLASSES)
    assert tuple(meta.input_size) == (SIZE, SIZE)
    assert meta.precision == precision
    probs = classifier.predict(prepared.images)
    result = compare(probs, prepared.float_probs, prepared.labels, meta.labels)
    max_diff, min_agreement, max_drop = THRESHOLDS[precision]
    if max_diff is not None:
        assert np.abs(probs - prepared.float_probs).max() < max_diff
    assert result.agreement >= min_agreement, result
    assert result.drop_pp <= max_drop, result
