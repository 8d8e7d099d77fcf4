"""Labelled images for bench: a folder per class, a pre-split dataset, or a run directory.

Uses the data layer's scanner and split manifest (both TensorFlow-free), so bench can
score a model on a device with the same test images training held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.data.fingerprint import file_digest, unit_hash
from edgecls.data.scan import SUBSET_FOLDERS, scan_dataset
from edgecls.data.split import Split
from edgecls.errors import DataError
from edgecls.rundir import RunDir


@dataclass
class LabelledImages:
    """Image paths with the index of their class in ``labels``."""

    source: str  # what was scored, e.g. "DIR (test split of run dir)"
    labels: list[str]
    items: list[tuple[Path, int]]
    held_out_only: bool = False  # a plain folder: keep the files each model's run held out
    root: Path | None = None
    subset: str | None = None  # "train" | "val" | "test": the given (or run's) subset they come from


def load_labelled_images(path: str | Path, max_per_class: int | None = None) -> LabelledImages:
    """Finds the labelled images to score models on.

    Args:
        path: a run directory (its ``split.json`` test subset), a pre-split dataset
            (its ``test`` subset, else ``val``), or a folder with one sub-folder per class.
        max_per_class: keep at most this many images of each class (first in file order).

    Raises:
        DataError: the folder is missing, empty or has no images.
    """
    path = Path(path).expanduser()
    run = RunDir(path)
    if run.split.is_file():
        images = _from_run_dir(run)
    else:
        images = _from_folder(path)
    if max_per_class is not None:
        images.items = _cap_per_class(images.items, max_per_class)
    if not images.items:
        raise DataError(f"no images to score in {path}", "check the folder or --max-per-class")
    return images


def _from_run_dir(run: RunDir) -> LabelledImages:
    split = Split.load(run.split)
    return LabelledImages(f"{run.root} (test split)", list(split.labels), split.items("test"), subset="test")


def _from_folder(path: Path) -> LabelledImages:
    scan = scan_dataset(path)
    subset = None
    if scan.layout == "presplit":
        subset = "test" if scan.files.get("test") else "val" if scan.files.get("val") else None
        if subset is None:
            raise DataError(f"{path} is pre-split but has no test or val images",
                            "pass the folder of the images to score, e.g. DIR/test")
    index = {label: i for i, label in enumerate(scan.labels)}
    items = [(p, index[label]) for label, paths in scan.files[subset].items() for p in paths]
    source = f"{path} ({subset} subset)" if subset else str(path)
    return LabelledImages(source, list(scan.labels), items, held_out_only=True, root=path,
                          subset=subset or SUBSET_FOLDERS.get(path.name.lower()))


def _cap_per_class(items: list[tuple[Path, int]], cap: int) -> list[tuple[Path, int]]:
    kept: list[tuple[Path, int]] = []
    counts: dict[int, int] = {}
    for path, label in items:
        if counts.get(label, 0) < cap:
            kept.append((path, label))
            counts[label] = counts.get(label, 0) + 1
    return kept


def select_held_out(items: list[tuple[str, int]], rule: dict[str, Any] | None,
                    root: str | None) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The images of a plain folder that the model's training run did not train on.

    Args:
        items: (path, class index) of every image given.
        rule: the artifact's split rule (``runtime.metadata.split_rule``), or None.
        root: the folder the paths are recorded relative to.

    Returns:
        The kept items and a ``selection`` record (keys in SCHEMA.md): when the held-out
        images cannot be told every image is kept and the record says why.
    """
    if rule is None:
        return items, _all_selection(items, "the model carries no split rule (a foreign model, or "
                                            "exported by an older edgecls)")
    if rule["held_out_from"] is not None:
        kept = [item for item in items if _hash(item[0], rule) >= rule["held_out_from"]]
        return kept, _held_out_selection(items, kept, rule, root)
    origins = [_given_subset(path, root) for path, _ in items]
    if None in origins:
        return items, _all_selection(items, f"the model's run was trained on the {rule['trained_folder']}/ "
                                            "folder of a pre-split dataset, and these images are not in "
                                            "a train/, val/ or test/ folder")
    kept = [item for item, origin in zip(items, origins) if _held_out_of_given(item[0], origin, rule)]
    return kept, _held_out_selection(items, kept, rule, root)


def _hash(path: str, rule: dict[str, Any]) -> float:
    return unit_hash(file_digest(path), rule["salt"])


def _given_subset(path: str, root: str | None) -> str | None:
    """The subset ("train", "val", "test") of the pre-split folder a file sits in, or None."""
    if root is None:
        return None
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return None
    if len(parts) >= 3 and parts[0].lower() in SUBSET_FOLDERS:  # ROOT/val/CLASS/x.jpg
        return SUBSET_FOLDERS[parts[0].lower()]
    return SUBSET_FOLDERS.get(Path(root).name.lower())  # ROOT is val/ itself


def _held_out_of_given(path: str, subset: str | None, rule: dict[str, Any]) -> bool:
    """Given val/test files were held out; a train/ file only if carved into val by its hash."""
    if subset != "train":
        return True
    return rule["carve_from"] is not None and _hash(path, rule) >= rule["carve_from"]


def _all_selection(items: list[tuple[str, int]], why: str) -> dict[str, Any]:
    return {"mode": "all", "held_out_known": False, "images_given": len(items), "images_used": len(items),
            "warning": f"{why}: every image was scored, including any it was trained on, "
                       "so top-1 may be optimistic"}


def _held_out_selection(items: list[tuple[str, int]], kept: list[tuple[str, int]], rule: dict[str, Any],
                        root: str | None) -> dict[str, Any]:
    return {"mode": "held_out", "held_out_known": True, "images_given": len(items),
            "images_used": len(kept), "excluded_as_training": len(items) - len(kept),
            "rule": rule, "files": [_relative(path, root) for path, _ in kept]}


def _relative(path: str, root: str | None) -> str:
    try:
        return Path(path).relative_to(root).as_posix() if root else str(path)
    except ValueError:
        return str(path)
