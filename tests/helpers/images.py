"""Generated image folders: classes that a tiny model learns in a few epochs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_image(label_index: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A BGR image whose class is easy to learn: a coloured shape on a noisy background."""
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    colors = [(255, 40, 40), (40, 255, 40), (40, 40, 255), (255, 255, 40), (255, 40, 255)]
    color = colors[label_index % len(colors)]
    c = size // 2 + int(rng.integers(-size // 8, size // 8 + 1))
    r = size // 4 + int(rng.integers(-2, 3))
    if label_index % 2 == 0:
        cv2.circle(image, (c, c), r, color, -1)
    else:
        cv2.rectangle(image, (c - r, c - r), (c + r, c + r), color, -1)
    return image


def write_image_folder(root: Path, classes: dict[str, int], size: int = 32,
                       seed: int = 0, ext: str = ".png") -> Path:
    """Writes ``root/<class>/<class>_<i><ext>`` images; returns ``root``."""
    rng = np.random.default_rng(seed)
    for index, (name, count) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            cv2.imwrite(str(folder / f"{name}_{i:04d}{ext}"), make_image(index, rng, size))
    return root


# Pure colors (BGR) of ``write_color_folder``'s classes.
BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}


def write_color_folder(root: Path, per_class: int = 3, swap: bool = False) -> Path:
    """Noisy pure-color images in red/green/blue folders (``swap``: wrong folders)."""
    rng = np.random.default_rng(0)
    names = list(BGR)
    for index, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        color = BGR[names[(index + 1) % 3] if swap else name]
        for i in range(per_class):
            noise = rng.integers(0, 40, (24, 20, 3))
            image = np.clip(np.asarray(color) * 0.85 + noise, 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{name}_{i}.png"), image)
    return root


def black_image_folder(root: Path) -> Path:
    """One all-black 32x32 PNG in ``root`` (a calibration set that ruins INT8)."""
    root.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "black.png"), np.zeros((32, 32, 3), np.uint8))
    return root
