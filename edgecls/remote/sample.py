"""The fixed, class-balanced sample of held-out images sent to each device.

Every device scores the same images: at most ``per_class`` of each class, spread evenly
over the class's files in name order (no randomness), laid out as ``CLASS/NNNN<suffix>``
so the device's ``edgecls bench --data`` reads it as a folder per class.
"""

from __future__ import annotations

from pathlib import Path

from edgecls.bench.dataset import LabelledImages
from edgecls.errors import DataError

DEFAULT_PER_CLASS = 50


def sample_images(images: LabelledImages, per_class: int = DEFAULT_PER_CLASS,
                  folder: str = "data") -> dict[str, Path]:
    """Archive names (``folder/CLASS/NNNN.ext``) -> local image paths."""
    if per_class < 1:
        raise DataError(f"a sample of {per_class} images per class is empty", "give --max-per-class 1 or more")
    by_class: dict[int, list[Path]] = {}
    for path, label in images.items:
        by_class.setdefault(label, []).append(Path(path))
    chosen: dict[str, Path] = {}
    for label, paths in sorted(by_class.items()):
        name = images.labels[label]
        if "/" in name or name in (".", ".."):
            raise DataError(f"class name {name!r} cannot be a folder name on the device")
        for index, path in enumerate(evenly_spaced(sorted(paths), per_class)):
            chosen[f"{folder}/{name}/{index:04d}{path.suffix.lower()}"] = path
    return chosen


def evenly_spaced(items: list[Path], count: int) -> list[Path]:
    """``count`` items spread over ``items`` (all of them when there are fewer)."""
    if len(items) <= count:
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]
