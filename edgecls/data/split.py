"""Deterministic, stratified, stable train/val/test splits.

Each image is assigned by a salted hash of its *content*: the same file always lands in
the same subset, whatever else is added, removed or renamed. Fractions hold per class
(stratified) up to hash noise; a class too small to receive a val or test image by hash
gets one moved from train deterministically (the only case where adding images can move
an existing one, and only in classes under ~20 images).

Pre-split datasets keep their subsets. One with train and val but no test uses its
``val`` as the test set and carves a new val from train, so the official evaluation
set stays untouched by early stopping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgecls.atomic import write_text_atomic
from edgecls.data.check import CheckReport, check_dataset
from edgecls.data.fingerprint import HASH_RULE, file_digest, unit_hash
from edgecls.data.scan import SUBSET_FOLDERS, SUBSET_NAMES
from edgecls.errors import DataError
from edgecls.rundir import RunDir

SPLIT_SCHEMA_VERSION = 1
SUBSETS = SUBSET_NAMES  # train, val, test: the pre-split folders of a dataset are named alike
HELD_OUT = SUBSETS[1:]  # val and test: never seen by training; the export gate compares on both


@dataclass
class Split:
    """Which file goes where. Paths are stored relative to ``root``."""

    root: Path
    labels: list[str]
    subsets: dict[str, list[tuple[str, int]]]  # subset -> [(relative path, label index)]
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    def items(self, subset: str) -> list[tuple[Path, int]]:
        """(absolute path, label index) pairs of one subset, in a stable order."""
        if subset not in self.subsets:
            raise DataError(f"unknown split {subset!r}", f"choose one of: {', '.join(SUBSETS)}")
        return [(self.root / rel, label) for rel, label in self.subsets[subset]]

    def counts(self) -> dict[str, dict[str, int]]:
        """subset -> label -> number of images."""
        out = {}
        for subset, entries in self.subsets.items():
            per = {label: 0 for label in self.labels}
            for _, index in entries:
                per[self.labels[index]] += 1
            out[subset] = per
        return out

    def save(self, path: str | Path) -> None:
        """Writes the split manifest as JSON (atomically)."""
        data = {
            "schema_version": SPLIT_SCHEMA_VERSION,
            "root": str(self.root.resolve()),  # later commands may run from another folder
            "labels": self.labels,
            "fractions": list(self.fractions),
            "seed": self.seed,
            "notes": self.notes,
            "counts": self.counts(),
            "subsets": {name: [[rel, label] for rel, label in entries]
                        for name, entries in self.subsets.items()},
        }
        write_text_atomic(Path(path), json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: str | Path, root: str | Path | None = None) -> Split:
        """Reads a split manifest; ``root`` overrides the stored dataset folder."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(f"split manifest {path} does not exist",
                            "train first: `edgecls train` writes it into the run directory") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"split manifest {path} is not valid JSON ({exc})") from None
        if data.get("schema_version") != SPLIT_SCHEMA_VERSION:
            raise DataError(f"split manifest {path} has schema version {data.get('schema_version')}, "
                            f"this edgecls reads version {SPLIT_SCHEMA_VERSION}")
        subsets = {name: [(rel, int(label)) for rel, label in entries]
                   for name, entries in data["subsets"].items()}
        return cls(root=Path(root or data["root"]), labels=list(data["labels"]), subsets=subsets,
                   fractions=tuple(data["fractions"]), seed=int(data["seed"]), notes=data.get("notes", []))


def make_split(report: CheckReport, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
               seed: int = 0) -> Split:
    """Assigns every usable image of a checked dataset to train, val or test."""
    fractions = _validate_fractions(fractions)
    label_index = {label: i for i, label in enumerate(report.labels)}
    subsets: dict[str, list[tuple[str, int]]] = {name: [] for name in SUBSETS}
    split = Split(root=report.root, labels=report.labels, subsets=subsets, fractions=fractions, seed=seed)
    for given_subset, by_label in report.usable.items():
        for label, paths in by_label.items():
            keyed = sorted(((unit_hash(report.digests[p], seed), p) for p in paths), key=lambda kp: kp[0])
            for subset, path in _assign(keyed, given_subset, report, fractions):
                subsets[subset].append((path.relative_to(report.root).as_posix(), label_index[label]))
    if report.layout == "presplit" and "test" not in report.usable and "val" in report.usable:
        val, train = _given_folder(report.root, "val"), _given_folder(report.root, "train")
        split.notes.append(f"no test/ folder: the given {val}/ is used as the test split and "
                           f"a new val split is carved from {train}/")
    for entries in subsets.values():
        entries.sort()
    return split


def _given_folder(root: Path, subset: str) -> str:
    """The dataset's own name of a pre-split subset's folder (``valid`` for "val")."""
    for child in sorted(root.iterdir()):
        if child.is_dir() and SUBSET_FOLDERS.get(child.name.lower()) == subset:
            return child.name
    return subset


def _assign(keyed: list[tuple[float, Path]], given: str | None, report: CheckReport,
            fractions: tuple[float, float, float]) -> list[tuple[str, Path]]:
    """Subset for each (hash, path) of one class, hashes in ascending order."""
    if given == "test" or (given == "val" and "test" not in report.usable):
        return [("test", p) for _, p in keyed]
    if given == "val":
        return [("val", p) for _, p in keyed]
    if given == "train":
        has_val = "val" in report.usable and "test" in report.usable
        if has_val:
            return [("train", p) for _, p in keyed]
        val_share = fractions[1] / (fractions[0] + fractions[1])
        return _by_threshold(keyed, (1.0 - val_share, val_share, 0.0))
    return _by_threshold(keyed, fractions)


def _by_threshold(keyed: list[tuple[float, Path]],
                  fractions: tuple[float, float, float]) -> list[tuple[str, Path]]:
    train_end = fractions[0]
    val_end = fractions[0] + fractions[1]
    assigned = [("train" if u < train_end else "val" if u < val_end else "test", p) for u, p in keyed]
    return _ensure_each_subset(assigned, fractions)


def _ensure_each_subset(assigned: list[tuple[str, Path]],
                        fractions: tuple[float, float, float]) -> list[tuple[str, Path]]:
    """Moves the highest-hash train images into an empty val/test subset (tiny classes)."""
    wanted = [name for name, frac in zip(SUBSETS, fractions) if frac > 0]
    for subset in wanted[1:]:
        if any(s == subset for s, _ in assigned):
            continue
        train_positions = [i for i, (s, _) in enumerate(assigned) if s == "train"]
        if len(train_positions) > 1:
            i = train_positions[-1]
            assigned[i] = (subset, assigned[i][1])
    return assigned


def hash_rule(split: Split) -> dict:
    """What tells this split's held-out files from its training files by content alone.

    ``held_out_from`` is the train fraction when every training file hashes below it
    (a folder split by hash). For a pre-split dataset it is None and the given folders
    decide instead: ``trained_folder`` names the folder the training files came from,
    every file of the other subset folders was held out, and a file of the trained folder
    whose hash is at least ``carve_from`` was carved into val (``carve_from`` is None when
    nothing was carved: all of it was trained on). Reads every training file once.
    """
    rule = {"salt": split.seed, "fractions": list(split.fractions), "held_out_from": None, "hash": HASH_RULE}
    if _is_presplit(split):
        return {**rule, **_given_folders_rule(split)}
    if _all_train_hash_below(split, split.fractions[0]):
        return {**rule, "held_out_from": split.fractions[0]}
    return rule


def _is_presplit(split: Split) -> bool:
    """Every file sits in SUBSET/CLASS/ (a flat dataset's files sit in CLASS/)."""
    paths = [rel.split("/") for entries in split.subsets.values() for rel, _ in entries]
    return bool(paths) and all(len(p) == 3 and p[0].lower() in SUBSET_FOLDERS for p in paths)


def _all_train_hash_below(split: Split, threshold: float) -> bool:
    try:
        return all(unit_hash(file_digest(path), split.seed) < threshold for path, _ in split.items("train"))
    except OSError:  # a training file moved away: cannot vouch for the rule
        return False


def _given_folders_rule(split: Split) -> dict:
    """``trained_folder`` and ``carve_from`` of a pre-split run; {} when its folders do not tell."""
    top = {name: {rel.split("/", 1)[0] for rel, _ in entries} for name, entries in split.subsets.items()}
    trained = top.get("train", set())
    if len(trained) != 1 or SUBSET_FOLDERS.get(next(iter(trained)).lower()) != "train":
        return {}
    folder = next(iter(trained))
    if folder not in top.get("val", set()):  # val came from its own folder: nothing carved
        return {"trained_folder": folder, "carve_from": None}
    carve_from = split.fractions[0] / (split.fractions[0] + split.fractions[1])
    if not _all_train_hash_below(split, carve_from):
        return {}
    return {"trained_folder": folder, "carve_from": carve_from}


def inherited_rule(split_path: str | Path) -> tuple[tuple[float, float, float], int]:
    """The (fractions, salt) of an earlier run's split, for a run that continues it
    (``train --init-from``): with the same salt and fractions every file keeps its subset,
    so the earlier run's held-out files stay held out and new files fall where they hash."""
    old = Split.load(split_path)
    return _validate_fractions(old.fractions), old.seed


def _validate_fractions(fractions) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(f < 0 for f in values) or values[0] <= 0:
        raise DataError(f"split fractions {fractions} are invalid",
                        "give three non-negative numbers train,val,test, e.g. 0.8,0.1,0.1")
    total = sum(values)
    if abs(total - 1.0) > 1e-6:
        raise DataError(f"split fractions {fractions} sum to {total:g}, not 1",
                        "e.g. 0.8,0.1,0.1")
    return values  # type: ignore[return-value]


def prepare_split(data_dir: str | Path, run_dir: str | Path,
                  fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0,
                  report: CheckReport | None = None) -> Split:
    """The split of a run: loaded if the run has one (resume), else checked and created
    (``seed`` is the salt of the content hash).

    Writes ``split.json`` and ``labels.txt`` into ``run_dir``.
    """
    run = RunDir(Path(run_dir))
    if run.split.is_file():
        return Split.load(run.split)
    report = report or check_dataset(data_dir)
    report.raise_for_errors()
    split = make_split(report, fractions, seed)
    split.notes.extend(report.warnings)  # what `data check` would warn about, kept with the run
    for subset in ("train", "val"):
        if not split.subsets[subset]:
            raise DataError(f"the {subset} split is empty", "add images or change --split fractions")
    split.save(run.split)
    write_text_atomic(run.labels, "\n".join(split.labels) + "\n")
    return split
