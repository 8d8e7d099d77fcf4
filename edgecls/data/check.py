"""Check a dataset: which files are usable, which are broken, duplicated or mislabelled.

Rules:
- zero-byte, non-image and undecodable (including truncated) files are excluded and listed;
- images in a format edgecls does not read (GIF, HEIC/HEIF, AVIF..., by signature or
  suffix) are excluded and listed as such, with a warning that training repeats;
- images whose header declares more pixels than the limit (``image_header.max_pixels``)
  are excluded and listed without being decoded;
- byte-identical files within one class are kept once;
- byte-identical files filed under different classes are a label conflict: every copy is
  excluded and the group is listed;
- fewer than two classes, or a class too small to split, is an error; a small class or a
  strong imbalance is a warning.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from edgecls.data.fingerprint import content_digest
from edgecls.data.jpeg import is_complete_jpeg
from edgecls.data.scan import ONE_CLASS_HINT, ScanResult, scan_dataset
from edgecls.errors import DataError
from edgecls.formats import unsupported_image_format, unsupported_image_message
from edgecls.runtime.image_header import check_pixels

CHECK_SCHEMA_VERSION = 1
MIN_IMAGES_TO_SPLIT = 3  # one each for train, val and test
SMALL_CLASS = 20
IMBALANCE_WARNING = 5.0
COMMON_SIZES_LISTED = 3


@dataclass
class FileInfo:
    """What reading one file told us."""

    path: Path
    digest: str | None = None
    shape: tuple[int, int] | None = None  # (height, width)
    problem: str | None = None  # why it is unusable
    unsupported: str | None = None  # an image format edgecls does not read (GIF...)


@dataclass
class CheckReport:
    """The verdict on a dataset. ``usable`` is what split and training may use."""

    root: Path
    layout: str
    labels: list[str]
    usable: dict[str | None, dict[str, list[Path]]]
    digests: dict[Path, str]
    unreadable: dict[Path, str] = field(default_factory=dict)
    non_images: list[Path] = field(default_factory=list)
    unsupported: dict[Path, str] = field(default_factory=dict)  # path -> format name (GIF...)
    loose: list[Path] = field(default_factory=list)  # images directly in root, in no class
    duplicates_within_class: list[list[Path]] = field(default_factory=list)
    duplicates_across_classes: list[list[Path]] = field(default_factory=list)
    duplicates_across_subsets: list[list[Path]] = field(default_factory=list)
    size_range: tuple[tuple[int, int], tuple[int, int]] | None = None
    common_sizes: list[tuple[tuple[int, int], int]] = field(default_factory=list)  # ((h, w), count)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def class_counts(self) -> dict[str, int]:
        """Usable images per class, over all subsets."""
        counts = {label: 0 for label in self.labels}
        for by_label in self.usable.values():
            for label, paths in by_label.items():
                counts[label] = counts.get(label, 0) + len(paths)
        return counts

    @property
    def imbalance_ratio(self) -> float | None:
        counts = [c for c in self.class_counts.values()]
        return max(counts) / min(counts) if counts and min(counts) > 0 else None

    def raise_for_errors(self) -> None:
        """Raises a DataError for the first fatal problem, if any."""
        if self.errors:
            more = f" (and {len(self.errors) - 1} more problem(s))" if len(self.errors) > 1 else ""
            hint = f"run `edgecls data check {self.root}` for the full report"
            if len(self.labels) < 2 and self.loose:
                hint = ONE_CLASS_HINT
            raise DataError(self.errors[0] + more, hint)

    def to_json(self) -> dict:
        """The JSON report; paths are relative to ``root``."""
        rel = self._rel
        counts_by_subset = {
            (subset or "all"): {label: len(p) for label, p in by_label.items()}
            for subset, by_label in self.usable.items()
        }
        return {
            "schema_version": CHECK_SCHEMA_VERSION,
            "root": str(self.root),
            "layout": self.layout,
            "classes": self.class_counts,
            "counts_by_subset": counts_by_subset,
            "total_usable": sum(self.class_counts.values()),
            "unreadable": [rel(p) for p in self.unreadable],
            "unreadable_reasons": {rel(p): why for p, why in self.unreadable.items()},
            "non_images": [rel(p) for p in self.non_images],
            "unsupported_images": {rel(p): unsupported_image_message(kind)
                                   for p, kind in self.unsupported.items()},
            "outside_classes": [rel(p) for p in self.loose],
            "duplicates_within_class": [[rel(p) for p in g] for g in self.duplicates_within_class],
            "duplicates_across_classes": [[rel(p) for p in g] for g in self.duplicates_across_classes],
            "duplicates_across_subsets": [[rel(p) for p in g] for g in self.duplicates_across_subsets],
            "imbalance_ratio": self.imbalance_ratio,
            "image_size_range": ({"min_hw": list(self.size_range[0]), "max_hw": list(self.size_range[1])}
                                 if self.size_range else None),
            "common_sizes_hw": [{"hw": list(hw), "count": n} for hw, n in self.common_sizes],
            "errors": self.errors,
            "warnings": self.warnings,
        }

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def check_dataset(
    root: str | Path,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Scans and checks ``root``; never raises for bad files, only lists them.

    Args:
        root: dataset folder (flat or pre-split layout).
        workers: reader threads (default: 2 x CPU count).
        on_progress: called with (files done, files total) as files are read.

    Returns:
        The report; call ``raise_for_errors()`` to stop on fatal problems.
    """
    scan = scan_dataset(root)
    entries = scan.all_files()
    infos = _inspect_all([path for _, _, path in entries], workers, on_progress)
    report = CheckReport(root=scan.root, layout=scan.layout, labels=scan.labels, usable={},
                         digests={}, loose=list(scan.loose))
    report.unsupported = {p: kind for p in scan.skipped if (kind := _unsupported_format(p))}
    report.unsupported.update({p: infos[p].unsupported for _, _, p in entries if infos[p].unsupported})
    report.non_images = [p for p in scan.skipped if p not in report.unsupported]
    readable = [(s, label, infos[p]) for s, label, p in entries if infos[p].problem is None]
    report.unreadable = {p: infos[p].problem for _, _, p in entries
                         if infos[p].problem and not infos[p].unsupported}
    report.digests = {info.path: info.digest for _, _, info in readable}
    excluded = _find_duplicates(report, readable)
    _collect_usable(report, scan, readable, excluded)
    _size_range(report, [info for _, _, info in readable])
    _judge(report)
    return report


def _inspect_all(paths: list[Path], workers: int | None,
                 on_progress: Callable[[int, int], None] | None) -> dict[Path, FileInfo]:
    workers = workers or 2 * (os.cpu_count() or 1)
    results: dict[Path, FileInfo] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, info in enumerate(pool.map(inspect_file, paths), start=1):
            results[info.path] = info
            if on_progress:
                on_progress(done, len(paths))
    return results


def inspect_file(path: Path) -> FileInfo:
    """Reads, hashes and fully decodes one file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileInfo(path, problem=f"cannot read: {exc.strerror}")
    if not data:
        return FileInfo(path, problem="zero-byte file")
    kind = _sniff(data)
    other = unsupported_image_format(data[:16]) if kind is None else None
    if other is not None:
        return FileInfo(path, problem=unsupported_image_message(other), unsupported=other)
    if kind is None:
        return FileInfo(path, problem="not an image (unknown file signature)")
    if kind == "jpeg" and not is_complete_jpeg(data):
        return FileInfo(path, problem="truncated JPEG (no end-of-image marker)")
    try:
        check_pixels(data, path.name)
    except DataError as exc:
        return FileInfo(path, problem=str(exc))
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # as training reads it
    if image is None or image.size == 0:
        return FileInfo(path, problem=f"cannot decode {kind} data")
    digest = content_digest(data)
    return FileInfo(path, digest=digest, shape=(int(image.shape[0]), int(image.shape[1])))


def _unsupported_format(path: Path) -> str | None:
    """The unsupported image format of a file scanning skipped for its suffix, if any."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        head = b""
    return unsupported_image_format(head, path.name)


def _sniff(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _find_duplicates(report: CheckReport, readable: list[tuple[str | None, str, FileInfo]]) -> set[Path]:
    """Groups identical files; returns the paths to exclude."""
    groups: dict[str, list[tuple[str | None, str, Path]]] = defaultdict(list)
    for subset, label, info in readable:
        groups[info.digest].append((subset, label, info.path))
    excluded: set[Path] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        paths = [p for _, _, p in members]
        if len({label for _, label, _ in members}) > 1:
            report.duplicates_across_classes.append(paths)
            excluded.update(paths)
            continue
        if len({subset for subset, _, _ in members}) > 1:
            report.duplicates_across_subsets.append(paths)
        report.duplicates_within_class.append(paths)
        excluded.update(paths[1:])  # keep the first copy
    return excluded


def _collect_usable(report: CheckReport, scan: ScanResult,
                    readable: Iterable[tuple[str | None, str, FileInfo]], excluded: set[Path]) -> None:
    report.usable = {subset: {label: [] for label in by_label} for subset, by_label in scan.files.items()}
    for subset, label, info in readable:
        if info.path not in excluded:
            report.usable[subset][label].append(info.path)
    for subset in report.usable:
        for label in report.labels:
            report.usable[subset].setdefault(label, [])


def _size_range(report: CheckReport, infos: list[FileInfo]) -> None:
    shapes = [info.shape for info in infos if info.shape]
    if shapes:
        report.size_range = ((min(h for h, _ in shapes), min(w for _, w in shapes)),
                             (max(h for h, _ in shapes), max(w for _, w in shapes)))
        report.common_sizes = Counter(shapes).most_common(COMMON_SIZES_LISTED)


def _judge(report: CheckReport) -> None:
    counts = report.class_counts
    if len(report.labels) < 2:
        mixed = f" and {len(report.loose)} image(s) of its own" if report.loose else ""
        report.errors.append(f"{report.root} has {len(report.labels)} class folder(s){mixed}; "
                             "a classifier needs at least 2")
    elif report.loose:
        report.warnings.append(f"{len(report.loose)} image(s) directly in {report.root} belong to "
                               "no class folder and are ignored")
    for label, count in counts.items():
        if count == 0:
            report.errors.append(f"class {label!r} has no readable images")
        elif report.layout == "flat" and count < MIN_IMAGES_TO_SPLIT:
            report.errors.append(f"class {label!r} has {count} usable image(s), too few to split "
                                 f"into train/val/test (need at least {MIN_IMAGES_TO_SPLIT})")
        elif count < SMALL_CLASS:
            report.warnings.append(f"class {label!r} is small ({count} images); "
                                   "its metrics will be noisy")
    if report.layout == "presplit":
        for label, paths in report.usable["train"].items():
            if counts.get(label) and not paths:
                report.errors.append(f"class {label!r} has no usable images in train/")
    ratio = report.imbalance_ratio
    if ratio and ratio >= IMBALANCE_WARNING:
        report.warnings.append(f"classes are imbalanced ({ratio:.1f}:1); training compensates "
                               "(logit adjustment by default, see the `imbalance` option); "
                               "judge the model by its balanced accuracy")
    if report.unreadable:
        report.warnings.append(f"{len(report.unreadable)} unreadable file(s) excluded")
    if report.unsupported:
        kinds = ", ".join(sorted(set(report.unsupported.values())))
        report.warnings.append(f"{len(report.unsupported)} image(s) in a format edgecls does not "
                               f"read excluded ({kinds}): convert them to JPEG/PNG to use them")
    if report.duplicates_across_classes:
        report.warnings.append(f"{len(report.duplicates_across_classes)} group(s) of identical files "
                               "filed under different classes excluded (label conflicts)")
    if report.duplicates_across_subsets:
        report.warnings.append(f"{len(report.duplicates_across_subsets)} identical file(s) appear in "
                               "more than one subset (train/val/test leak); copies after the first excluded")
