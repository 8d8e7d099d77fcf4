"""``predictions.json``: the per-image top-1 behind the gate's counts, beside manifest.json.

The export's validation runs the float model and every artifact over all held-out images;
this file keeps what they predicted, so the changes page (``explain.changes``) explains the
changed images without running the models again, and users (or ``bench``) can see which
images an artifact changed. Schema version 1 (see docs/gate.md):

- ``root``: the dataset folder; ``paths`` (relative to it), ``labels`` (class indices) and
  ``splits`` describe every held-out image, in the gate's order (val, then test).
- ``classes``: class names; ``float``: ``top1`` and ``top1_probability`` of the float model.
- ``artifacts``: file name -> ``sha256`` of the artifact, its ``top1`` and its probability
  of the float model's top-1 class (``float_top1_probability``) per held-out image; null
  for images left out of that artifact's comparison (tuned an accuracy-controlled remedy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.digest import file_sha256
from edgecls.rundir import ExportDir

PREDICTIONS_SCHEMA_VERSION = 1
PREDICTIONS_NAME = ExportDir.PREDICTIONS


@dataclass
class ArtifactPredictions:
    """One artifact's top-1 on the held-out images (-1 where it was not compared)."""

    sha256: str
    top1: np.ndarray  # int, -1: not compared
    float_top1_probability: np.ndarray  # float, nan: not compared

    @property
    def compared(self) -> np.ndarray:
        """Mask of the held-out images this artifact was compared on."""
        return self.top1 >= 0


@dataclass
class HeldOutPredictions:
    """The float model's and every artifact's top-1 on the held-out images of one export."""

    root: str
    paths: list[str]
    labels: np.ndarray
    splits: list[str]
    classes: list[str]
    float_top1: np.ndarray
    float_top1_probability: np.ndarray
    artifacts: dict[str, ArtifactPredictions] = field(default_factory=dict)

    @classmethod
    def from_float(cls, root: Path, items: list[tuple[Path, int]], splits: list[str],
                   classes: list[str], float_probs: np.ndarray) -> HeldOutPredictions:
        """The held-out images (``items`` under ``root``) and the float model's predictions."""
        top1 = float_probs.argmax(axis=1)
        return cls(root=str(root), paths=[Path(p).relative_to(root).as_posix() for p, _ in items],
                   labels=np.array([label for _, label in items], dtype=np.int64),
                   splits=[str(s) for s in splits], classes=list(classes), float_top1=top1,
                   float_top1_probability=float_probs[np.arange(len(top1)), top1])

    def add(self, name: str, sha256: str, compared: np.ndarray, top1: np.ndarray,
            float_top1_probability: np.ndarray) -> None:
        """Records artifact ``name``: its predictions on the ``compared`` held-out images."""
        full_top1 = np.full(len(self.paths), -1, dtype=np.int64)
        full_top1[compared] = top1
        full_prob = np.full(len(self.paths), np.nan, dtype=np.float64)
        full_prob[compared] = float_top1_probability
        self.artifacts[name] = ArtifactPredictions(sha256, full_top1, full_prob)

    def for_artifact(self, path: Path) -> ArtifactPredictions | None:
        """The stored predictions of ``path``, or None when its bytes are not those validated."""
        stored = self.artifacts.get(Path(path).name)
        if stored is None or not Path(path).is_file() or file_sha256(Path(path)) != stored.sha256:
            return None
        return stored

    def same_images(self, root: Path, items: list[tuple[Path, int]]) -> bool:
        """True when ``items`` are exactly the held-out images (and labels) stored here."""
        try:
            paths = [Path(p).relative_to(root).as_posix() for p, _ in items]
        except ValueError:
            return False
        return paths == self.paths and [label for _, label in items] == self.labels.tolist()

    def to_json(self) -> str:
        """Compact JSON text (one list per field)."""
        return json.dumps({
            "schema_version": PREDICTIONS_SCHEMA_VERSION, "root": self.root,
            "paths": self.paths, "labels": self.labels.tolist(), "splits": self.splits,
            "classes": self.classes,
            "float": {"top1": self.float_top1.tolist(),
                      "top1_probability": _rounded(self.float_top1_probability)},
            "artifacts": {name: {"sha256": a.sha256,
                                 "top1": [int(t) if t >= 0 else None for t in a.top1],
                                 "float_top1_probability": _rounded(a.float_top1_probability)}
                          for name, a in self.artifacts.items()},
        }, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str) -> HeldOutPredictions:
        """Parses ``to_json`` output.

        Raises:
            ValueError: not a predictions file of a schema version this code reads.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("schema_version") != PREDICTIONS_SCHEMA_VERSION:
            raise ValueError("not a predictions.json of schema version "
                             f"{PREDICTIONS_SCHEMA_VERSION}")
        try:
            return cls(root=str(data["root"]), paths=[str(p) for p in data["paths"]],
                       labels=np.array(data["labels"], dtype=np.int64),
                       splits=[str(s) for s in data["splits"]], classes=list(data["classes"]),
                       float_top1=np.array(data["float"]["top1"], dtype=np.int64),
                       float_top1_probability=_floats(data["float"]["top1_probability"]),
                       artifacts={name: _artifact(a) for name, a in data["artifacts"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed predictions.json: {exc!r}") from None


def load_predictions(path: Path) -> HeldOutPredictions | None:
    """The predictions file at ``path``, or None when it is absent or unreadable."""
    try:
        return HeldOutPredictions.from_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _artifact(data: dict[str, Any]) -> ArtifactPredictions:
    top1 = np.array([-1 if t is None else int(t) for t in data["top1"]], dtype=np.int64)
    return ArtifactPredictions(str(data["sha256"]), top1, _floats(data["float_top1_probability"]))


def _rounded(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), 6) for v in values]


def _floats(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
