"""``check_data`` and ``write_digits``: ``edgecls data check`` and ``edgecls data digits``."""

from __future__ import annotations

import json
from pathlib import Path

from edgecls.api.results import DataReport
from edgecls.atomic import write_text_atomic
from edgecls.data.check import check_dataset
from edgecls.data.digits import write_digits_dataset
from edgecls.present.progress import count_bar
from edgecls.runtime.image_header import set_max_pixels


def check_data(data_dir: str | Path, json_path: str | Path | None = None, max_pixels: str | int | None = None,
               progress: bool = True) -> DataReport:
    """Checks a dataset folder: images per class, unreadable files, duplicates, label
    conflicts, too-small classes. Never raises for bad files; see ``DataReport.ok``.

    Args:
        data_dir: ``DIR/<class>/*`` or ``DIR/{train,val,test}/<class>/*``.
        json_path: also write the full report as JSON to this file.
        max_pixels: refuse images whose header declares more pixels (e.g. ``"90M"``).
        progress: draw a progress bar while the files are read.

    Raises:
        DataError: the folder is missing or not a folder.
    """
    set_max_pixels(max_pixels)
    with count_bar("reading images", enabled=progress) as on_progress:
        report = DataReport(check_dataset(Path(data_dir), on_progress=on_progress))
    if json_path is not None:
        write_text_atomic(Path(json_path), json.dumps(report.to_dict(), indent=1))
    return report


def write_digits(out: str | Path, size: int = 32) -> Path:
    """Writes scikit-learn's bundled handwritten digits (1797 images, no download) as
    ``out/<digit>/*.png``, the offline demo dataset (``edgecls data digits``).

    Args:
        out: the folder to write into (one sub-folder per digit).
        size: side of the written PNG images in pixels.

    Raises:
        EdgeclsError: scikit-learn is not installed (``pip install "edgecls[demo]"``).
    """
    return write_digits_dataset(out, size)
