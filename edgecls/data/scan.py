"""Find the images of a folder-per-class dataset.

Two layouts are accepted::

    DIR/<class>/*                      (flat: edgecls splits it)
    DIR/{train,val,test}/<class>/*     (pre-split: the given subsets are kept)

A pre-split dataset may name its folders as exporters do (``valid/`` from Roboflow,
``validation/``, ``training/``, ``testing/``; any case). A ``train/`` holding class
folders beside other subset folders and a folder that is none of them is refused: read
as flat, its subsets would become classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgecls.errors import DataError
from edgecls.formats import is_image

SUBSET_NAMES = ("train", "val", "test")
# Folder names of a pre-split dataset (lower case) and the subset each holds.
SUBSET_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                  "validation": "val", "test": "test", "testing": "test"}
ONE_CLASS_HINT = ("pass the folder that holds one sub-folder per class (DIR/<class>/*.jpg); "
                  "if this is the folder of one class, pass the folder above it")


@dataclass
class ScanResult:
    """Every file found, by subset (``None`` for a flat layout) and class."""

    root: Path
    layout: str  # "flat" | "presplit"
    labels: list[str]
    files: dict[str | None, dict[str, list[Path]]] = field(default_factory=dict)
    skipped: list[Path] = field(default_factory=list)  # files with a non-image extension
    loose: list[Path] = field(default_factory=list)  # images directly in root, in no class

    def all_files(self) -> list[tuple[str | None, str, Path]]:
        """(subset, label, path) for every candidate image, in a stable order."""
        return [(subset, label, path)
                for subset, by_label in self.files.items()
                for label, paths in by_label.items()
                for path in paths]


def scan_dataset(root: str | Path) -> ScanResult:
    """Lists the candidate image files of ``root`` by class (and subset if pre-split)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist",
                        "pass a folder holding one sub-folder of images per class")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder", "pass a folder holding one sub-folder per class")
    subdirs = _subdirs(root)
    loose = sorted(p for p in root.iterdir() if p.is_file() and is_image(p) and not p.name.startswith("."))
    if not subdirs:
        if loose:
            raise DataError(f"{root} holds {len(loose)} image(s) but no class sub-folders",
                            ONE_CLASS_HINT)
        raise DataError(f"dataset folder {root} is empty or has no class sub-folders",
                        "put the images of each class in its own sub-folder, e.g. DIR/cat/*.jpg")
    if _is_presplit(root, subdirs):
        result = _scan_presplit(root, subdirs)
    else:
        result = ScanResult(root=root, layout="flat", labels=sorted(d.name for d in subdirs))
        result.files[None] = _scan_classes(subdirs, result.skipped)
    result.loose = loose
    return result


def _is_presplit(root: Path, subdirs: list[Path]) -> bool:
    """Whether ``root``'s folders are subsets (with a train one), not classes.

    Raises:
        DataError: two folders of one subset (``val/`` and ``valid/``), or a train folder
            of class folders beside other subsets and a folder that is none.
    """
    subsets = {d.name: SUBSET_FOLDERS.get(d.name.lower()) for d in subdirs}
    if "train" not in subsets.values():
        return False
    others = sorted(name for name, subset in subsets.items() if subset is None)
    if not others:
        _refuse_two_folders_of_one_subset(root, subsets)
        return True
    train = next(d for d in subdirs if subsets[d.name] == "train")
    given = {subset for subset in subsets.values() if subset not in (None, "train")}
    if given and _subdirs(train):
        extra = ", ".join(f"{name}/" for name in others)
        raise DataError(f"{root} looks pre-split ({train.name}/ holds class folders) but also "
                        f"holds {extra}, which is not train, val or test",
                        "move it out (or rename it val/ or test/ if it is one): a pre-split "
                        "dataset holds train/, val/ (or valid/) and test/, each with one folder "
                        "per class")
    return False


def _refuse_two_folders_of_one_subset(root: Path, subsets: dict[str, str | None]) -> None:
    for subset in SUBSET_NAMES:
        names = sorted(name for name, given in subsets.items() if given == subset)
        if len(names) > 1:
            raise DataError(f"{root} has {' and '.join(n + '/' for n in names)}, both read as "
                            f"the {subset} subset", "merge them into one folder")


def _scan_presplit(root: Path, subset_dirs: list[Path]) -> ScanResult:
    result = ScanResult(root=root, layout="presplit", labels=[])
    labels: set[str] = set()
    for subset_dir in subset_dirs:
        class_dirs = _subdirs(subset_dir)
        result.files[SUBSET_FOLDERS[subset_dir.name.lower()]] = _scan_classes(class_dirs,
                                                                              result.skipped)
        labels.update(d.name for d in class_dirs)
    result.files = {subset: result.files[subset] for subset in SUBSET_NAMES if subset in result.files}
    train_labels = set(result.files["train"])
    if not train_labels:
        train = next(d for d in subset_dirs if SUBSET_FOLDERS[d.name.lower()] == "train")
        raise DataError(f"{train} has no class sub-folders",
                        f"put the training images of each class in {train.name}/<class>/")
    extra = labels - train_labels
    if extra:
        raise DataError(f"classes {', '.join(sorted(extra))} appear in val/test but not in train",
                        "every class needs training images in train/<class>/")
    result.labels = sorted(train_labels)
    return result


def _scan_classes(class_dirs: list[Path], skipped: list[Path]) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {}
    for class_dir in class_dirs:
        paths = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        files[class_dir.name] = [p for p in paths if is_image(p)]
        skipped.extend(p for p in paths if not is_image(p))
    return files


def _subdirs(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
