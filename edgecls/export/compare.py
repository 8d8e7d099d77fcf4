"""Is the next model better than the deployed one? ``edgecls compare NEW OLD``.

Both models classify the same held-out images: NEW's test split (NEW chose its
checkpoint on val, so val would favour it), minus any image OLD trained on, on the
classes both know. The verdict is the export gate's rule at a zero budget
(``edgecls.stats.difference_verdict``): a paired difference whose 95 % interval lies
above zero is ``better``, below zero ``worse``, else ``no resolved difference``.

Two slices show where a change comes from: the images that are new since OLD (present
in NEW's split, absent from OLD's, by content digest: what was collected and labelled
since) and OLD's own test images (what OLD knew; a drop there is forgetting). Images of
a class only NEW knows are reported apart.

A side is a run directory (its ``best.keras`` through Keras, so TensorFlow is imported
then) or an exported artifact (through ``edgecls.runtime``); an artifact's run is the
folder its ``export/`` sits in, or the one given. This sits at the export layer, beside
the gate, because both judge with ``edgecls.stats``; ``remote.deploy`` calls it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.data.fingerprint import file_digest
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.digest import file_sha256
from edgecls.errors import DataError, ModelError
from edgecls.formats import format_for_path
from edgecls.rundir import RunDir
from edgecls.stats import PairedDrop, compare_paired, difference_verdict, per_class_drops

COMPARISON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Side:
    """One model of a comparison: a run's float model or an exported artifact."""

    path: Path  # the run directory or the artifact file
    kind: str  # "run" or "artifact"
    run: RunDir  # the run that trained it (its split and labels)
    sha256: str  # of best.keras or of the artifact
    labels: tuple[str, ...] = ()  # an artifact's own labels (its embedded metadata)
    input_size: tuple[int, int] | None = None  # an artifact's input (height, width)

    @property
    def model_file(self) -> Path:
        return self.run.best_model if self.kind == "run" else self.path

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path.resolve()), "kind": self.kind,
                "run": str(self.run.root.resolve()), "sha256": self.sha256}


def resolve_side(path: str | Path, run: str | Path | None = None) -> Side:
    """A run directory or an artifact file as a ``Side`` (with the run that trained it).

    Raises:
        ModelError: ``path`` is neither a finished run nor a model file, or an
            artifact's run cannot be found.
    """
    path = Path(path)
    if path.is_dir():
        found = RunDir(path)
        found.require_model()
        return Side(path, "run", found, file_sha256(found.best_model))
    if path.is_file() and path.name.endswith(".keras") and RunDir(path.parent).split.is_file():
        return Side(path.parent, "run", RunDir(path.parent), file_sha256(path))
    if not path.is_file() or format_for_path(path) is None:
        raise ModelError(f"{path} is not a run directory or a model file (.tflite, .onnx, .xml)",
                         "pass the --out folder of `edgecls train` or a file `edgecls export` wrote")
    owner = RunDir(Path(run)) if run else _run_of_artifact(path)
    if not owner.split.is_file():
        raise ModelError(f"{owner.root} is not the run of {path.name} (it has no split.json)",
                         "pass the artifact's training run with --new-run/--old-run")
    meta = _artifact_metadata(path)  # a file that is not a model fails here, before any Keras
    return Side(path, "artifact", owner, file_sha256(path), tuple(meta.labels), meta.input_size)


def _artifact_metadata(path: Path) -> Any:
    from edgecls.runtime.backends import load_backend

    meta = load_backend(path).read_metadata()
    if meta is None or not meta.labels:
        raise ModelError(f"{path} carries no edgecls metadata (input size, labels)",
                         "compare artifacts written by `edgecls export`, or the runs")
    return meta


def _run_of_artifact(path: Path) -> RunDir:
    for folder in (path.parent.parent, path.parent):  # RUN/export/model.tflite, or RUN/model.tflite
        if RunDir(folder).split.is_file():
            return RunDir(folder)
    raise ModelError(f"cannot tell which run trained {path} (no split.json beside its folder)",
                     "pass the run with --new-run/--old-run, or compare the run directories")


@dataclass
class SliceResult:
    """Both models on one set of images: accuracies and the paired difference."""

    images: int
    old_accuracy: float
    new_accuracy: float
    paired: PairedDrop  # reference OLD, candidate NEW: drop_pp > 0 means NEW is worse
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        d = self.paired
        return {"images": self.images, "old_accuracy": round(self.old_accuracy, 6),
                "new_accuracy": round(self.new_accuracy, 6),
                "difference_pp": _pp(-d.drop_pp), "interval_pp": [_pp(-d.high_pp), _pp(-d.low_pp)],
                "old_right_new_wrong": d.counts.right_to_wrong,
                "old_wrong_new_right": d.counts.wrong_to_right, "verdict": self.verdict}


def _pp(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value) + 0.0, 4)


@dataclass
class Comparison:
    """What ``compare`` found; ``to_dict`` is the ``--json`` report."""

    new: Side
    old: Side
    classes: list[str]  # both know them: the compared images are of these
    overall: SliceResult
    new_images: SliceResult | None  # in NEW's split, not in OLD's
    old_test_images: SliceResult | None  # in OLD's test split too
    per_class: dict[str, SliceResult]
    new_only_classes: dict[str, dict[str, Any]]  # class -> images, new_accuracy
    excluded_trained_by_old: int  # NEW test images OLD trained or validated on

    @property
    def verdict(self) -> str:
        return self.overall.verdict

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": COMPARISON_SCHEMA_VERSION, "verdict": self.verdict,
                "method": "paired NEW vs OLD on NEW's test split; 95 % Tango score interval of "
                          "the accuracy difference (NEW minus OLD), as the export gate",
                "new": self.new.describe(), "old": self.old.describe(), "classes": self.classes,
                "overall": self.overall.to_dict(),
                "new_images": self.new_images.to_dict() if self.new_images else None,
                "old_test_images": self.old_test_images.to_dict() if self.old_test_images else None,
                "per_class": {name: r.to_dict() for name, r in self.per_class.items()},
                "new_only_classes": self.new_only_classes,
                "excluded_trained_by_old": self.excluded_trained_by_old}

    def summary(self) -> str:
        """The one-line verdict."""
        o = self.overall
        low, high = 0.0 - o.paired.high_pp, 0.0 - o.paired.low_pp
        return (f"{self.verdict}: NEW {100 * o.new_accuracy:.2f}% vs OLD {100 * o.old_accuracy:.2f}% "
                f"on {o.images} held-out images, difference {0.0 - o.paired.drop_pp:+.2f} pp "
                f"[{low:+.2f}, {high:+.2f}]")


def compare_models(new: Side, old: Side) -> Comparison:
    """Both models on NEW's test split, overall, per class and on the two slices.

    Raises:
        DataError: NEW's run has no test split, or no test image of a shared class.
        ModelError: the classes are incompatible (OLD knows one NEW does not, or the
            models' outputs do not match their runs' labels).
    """
    new_split, old_split = Split.load(new.run.split), Split.load(old.run.split)
    classes, new_only = _shared_classes(new, new_split, old, old_split)
    test = new_split.items("test")
    if not test:
        raise DataError(f"the run {new.run.root} has no test split to compare on",
                        "train NEW with test images (a test fraction, or a test/ folder)")
    digests = [file_digest(path) for path, _ in test]
    old_subset = _subset_by_digest(old_split)
    names = [new_split.labels[label] for _, label in test]
    trained_by_old = np.array([old_subset.get(d) in ("train", "val") for d in digests])
    shared = np.array([n in classes for n in names]) & ~trained_by_old
    if not shared.any():
        raise DataError("NEW's test split has no image of a class OLD knows that OLD did not train on",
                        "compare on a dataset whose test split has images of the old classes")
    new_labels, old_labels = _model_labels(new, new_split), _model_labels(old, old_split)
    new_pred = _predicted_names(new, test, new_labels)
    truth = np.array(names)
    new_right = new_pred == truth
    keep = np.flatnonzero(shared)
    old_right = _predicted_names(old, [test[i] for i in keep], old_labels) == truth[keep]
    kept_digests = [digests[i] for i in keep]
    is_new = np.array([d not in old_subset for d in kept_digests])
    in_old_test = np.array([old_subset.get(d) == "test" for d in kept_digests])
    return Comparison(
        new=new, old=old, classes=classes,
        overall=_slice(old_right, new_right[keep]),
        new_images=_slice(old_right[is_new], new_right[keep][is_new]) if is_new.any() else None,
        old_test_images=(_slice(old_right[in_old_test], new_right[keep][in_old_test])
                         if in_old_test.any() else None),
        per_class=_per_class(old_right, new_right[keep], truth[keep], classes),
        new_only_classes=_new_only(new_only, truth, new_right),
        excluded_trained_by_old=int(trained_by_old.sum()))


def _shared_classes(new: Side, new_split: Split, old: Side,
                    old_split: Split) -> tuple[list[str], list[str]]:
    old_labels = _run_labels(old.run, old_split)
    new_labels = _run_labels(new.run, new_split)
    missing = [name for name in old_labels if name not in new_labels]
    if missing:
        raise ModelError(f"NEW ({new.path}) does not know class(es) {', '.join(missing)} that OLD "
                         f"({old.path}) knows: it cannot replace OLD",
                         "train NEW on a dataset with every class of OLD (train --init-from OLD)")
    return [n for n in new_labels if n in old_labels], [n for n in new_labels if n not in old_labels]


def _run_labels(run: RunDir, split: Split) -> list[str]:
    return (run.read_labels() if run.labels.is_file() else None) or list(split.labels)


def _subset_by_digest(split: Split) -> dict[str, str]:
    """Content digest -> subset of every file of ``split`` (unreadable files are left out)."""
    out: dict[str, str] = {}
    for subset in split.subsets:
        for path, _ in split.items(subset):
            try:
                out.setdefault(file_digest(path), subset)
            except OSError:
                continue
    return out


def _model_labels(side: Side, split: Split) -> list[str]:
    """The class of each output of ``side``'s model (an artifact's own labels win)."""
    return list(side.labels) if side.kind == "artifact" else _run_labels(side.run, split)


def _predicted_names(side: Side, items: list[tuple[Path, int]], labels: list[str]) -> np.ndarray:
    """The class name each image is classified as by ``side``'s model."""
    probs = _probabilities(side, items)
    if probs.shape[1] != len(labels):
        raise ModelError(f"{side.model_file} has {probs.shape[1]} outputs but its run has "
                         f"{len(labels)} classes", "compare the model with the run that trained it")
    return np.array(labels)[probs.argmax(axis=1)]


def _probabilities(side: Side, items: list[tuple[Path, int]]) -> np.ndarray:
    if side.kind == "artifact":
        from edgecls.export.validate import artifact_probabilities

        images, _ = load_arrays(items, side.input_size or (0, 0))
        return artifact_probabilities(side.path, images)[0]
    from edgecls.models.float_model import input_size, load_float_model, predict

    model = load_float_model(side.run.best_model)
    images, _ = load_arrays(items, input_size(model))
    return predict(model, images)


def _slice(old_right: np.ndarray, new_right: np.ndarray) -> SliceResult:
    paired = compare_paired(old_right, new_right)
    return SliceResult(len(old_right), float(np.mean(old_right)), float(np.mean(new_right)),
                       paired, difference_verdict(paired))


def _per_class(old_right: np.ndarray, new_right: np.ndarray, truth: np.ndarray,
               classes: list[str]) -> dict[str, SliceResult]:
    index = np.array([classes.index(n) for n in truth])
    drops = per_class_drops(old_right, new_right, index, len(classes))
    return {name: SliceResult(drop.counts.images, float(np.mean(old_right[index == i])),
                              float(np.mean(new_right[index == i])), drop, difference_verdict(drop))
            for i, (name, drop) in enumerate(zip(classes, drops)) if drop is not None}


def _new_only(names: list[str], truth: np.ndarray, new_right: np.ndarray) -> dict[str, dict[str, Any]]:
    out = {}
    for name in names:
        mask = truth == name
        out[name] = {"images": int(mask.sum()),
                     "new_accuracy": round(float(np.mean(new_right[mask])), 6) if mask.any() else None}
    return out


def compare_paths(new: str | Path, old: str | Path, new_run: str | Path | None = None,
                  old_run: str | Path | None = None) -> Comparison:
    """``compare_models`` of two paths (run directories or artifacts)."""
    return compare_models(resolve_side(new, new_run), resolve_side(old, old_run))


def load_comparison(path: str | Path) -> dict[str, Any]:
    """A report written by ``compare --json``.

    Raises:
        ModelError: the file is missing, not JSON, or of another schema version.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"comparison {path} does not exist",
                         "write one with `edgecls compare NEW OLD --json FILE`") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"comparison {path} is not readable JSON ({exc})",
                         "write one with `edgecls compare NEW OLD --json FILE`") from None
    if not isinstance(data, dict) or data.get("schema_version") != COMPARISON_SCHEMA_VERSION:
        raise ModelError(f"{path} is not a comparison report of schema version "
                         f"{COMPARISON_SCHEMA_VERSION}", "re-run `edgecls compare NEW OLD --json FILE`")
    return data
