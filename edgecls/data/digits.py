"""The demo dataset: scikit-learn's bundled handwritten digits as an image folder.

It ships inside scikit-learn (no download), so the README's demo runs offline.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecls.errors import EdgeclsError


def write_digits_dataset(out: str | Path, size: int = 32) -> Path:
    """Writes the 1797 8x8 digits, upscaled to ``size`` px PNGs, as ``out/<digit>/*.png``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise EdgeclsError("the demo dataset needs scikit-learn",
                           'install it with `pip install "edgecls[demo]"`') from None
    digits = load_digits()
    out = Path(out)
    for index, (image, target) in enumerate(zip(digits.images, digits.target)):
        folder = out / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (255 - image * (255 / 16)).astype(np.uint8)  # dark ink on white paper
        pixels = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"digit{target}_{index:04d}.png"), pixels)
    return out
