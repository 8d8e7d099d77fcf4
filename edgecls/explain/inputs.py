"""Which images to explain: files named on the command line and image folders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgecls.errors import DataError
from edgecls.formats import IMAGE_SUFFIXES, is_image


@dataclass(frozen=True)
class ImageInput:
    """One image to explain; ``in_folder`` images are skipped (not fatal) when unreadable."""

    path: Path
    in_folder: bool


def collect_images(paths: Sequence[str | Path]) -> list[ImageInput]:
    """Image files in the order given; folders expand to their images (recursively, sorted).

    Raises:
        DataError: a path does not exist, or no image was found at all.
    """
    found: list[ImageInput] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [ImageInput(p, True) for p in sorted(path.rglob("*"))
                      if p.is_file() and is_image(p) and not _hidden(p, path)]
        elif path.is_file():
            found.append(ImageInput(path, False))
        else:
            raise DataError(f"image or folder {path} does not exist", "check the path")
    if not found:
        raise DataError(f"no images found in {', '.join(str(p) for p in paths)}",
                        f"pass image files or folders holding {', '.join(IMAGE_SUFFIXES)} files")
    return found


def _hidden(path: Path, folder: Path) -> bool:
    """Hidden files and folders (macOS ``._name.jpg`` resource forks), as data check skips them."""
    return any(part.startswith(".") for part in path.relative_to(folder).parts)
