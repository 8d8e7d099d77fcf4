"""The input resolution a dataset calls for, from its images' headers.

Upsampling small images to a large input costs compute (quadratic in the side) without
adding detail; downsampling large ones past what the model family was trained at throws
detail away. The suggestion is the median shorter side of a sample of the images,
rounded to a multiple of 32 and clamped to ``[MIN_SIZE, MAX_SIZE]``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from edgecls.runtime.image_header import image_size

MIN_SIZE = 128
MAX_SIZE = 224
STEP = 32
SAMPLE = 200
_HEADER_BYTES = 128 * 1024  # a JPEG's start-of-frame sits behind its EXIF block (<= 64 KB)


def suggest_image_size(paths: Sequence[Path], sample: int = SAMPLE) -> int:
    """The square input side for images at ``paths`` (``MAX_SIZE`` when none is readable).

    Args:
        paths: the dataset's image files.
        sample: read at most this many headers, spread evenly over ``paths``.
    """
    return explain_image_size(paths, sample)[0]


def explain_image_size(paths: Sequence[Path], sample: int = SAMPLE) -> tuple[int, str]:
    """``suggest_image_size`` and where it came from, e.g. ``(192, "from the data: median
    shorter side 181 px of 200 images")``."""
    stride = max(1, len(paths) // sample)
    sides = [min(size) for size in map(_header_size, list(paths)[::stride][:sample]) if size]
    if not sides:
        return MAX_SIZE, "the default: no image header could be read"
    median = statistics.median(sides)
    rounded = int(round(median / STEP)) * STEP
    size = max(MIN_SIZE, min(MAX_SIZE, rounded))
    how = f"median shorter side {median:g} px of {len(sides)} images"
    if size != rounded:
        how += f", clamped to {MIN_SIZE}-{MAX_SIZE}"
    return size, f"from the data: {how}"


def _header_size(path: Path) -> tuple[int, int] | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_BYTES)
    except OSError:
        return None
    return image_size(head)
