"""What every explanation method returns: one heatmap per (image, class), with its provenance.

numpy only. A heatmap is float32 (H, W) at the model's input size, scaled to 0..1
(1 = the evidence the class relies on most).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

# A prepared float32 NHWC batch (model input space) -> class probabilities (N, classes).
PredictFn = Callable[[np.ndarray], np.ndarray]

GRID_SIZE = 14  # cells per side of the heatmap stored in JSON


@dataclass
class Explanation:
    """One class's heatmap for one image.

    Attributes:
        method: "gradcam", "gradcam++", "rise" or "occlusion".
        class_name, class_index: the explained class.
        score: the model's probability for that class on the unmasked image.
        rank: 1 for the top-1 prediction, 2 for the second best, ...
        heatmap: float32 (H, W) in 0..1 at the model's input size.
        seconds: wall time the method took for this image (all its classes).
        options: the method's settings (masks, grid, window...).
    """

    method: str
    class_name: str
    class_index: int
    score: float
    rank: int
    heatmap: np.ndarray
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)

    def grid(self, size: int = GRID_SIZE) -> np.ndarray:
        """The heatmap averaged down to ``size`` x ``size`` cells (what JSON stores)."""
        return cv2.resize(self.heatmap, (size, size), interpolation=cv2.INTER_AREA)

    def to_dict(self, grid_size: int = GRID_SIZE) -> dict[str, Any]:
        """JSON-ready: the heatmap as a small grid rounded to 3 decimals."""
        return {
            "method": self.method, "class": self.class_name, "class_index": self.class_index,
            "score": round(float(self.score), 6), "rank": self.rank,
            "seconds": round(self.seconds, 4), "options": self.options,
            "heatmap": np.round(self.grid(grid_size), 3).tolist(),
        }


def normalize(saliency: np.ndarray) -> np.ndarray:
    """Scales a raw saliency map to 0..1 (a constant map becomes all zeros)."""
    saliency = np.asarray(saliency, dtype=np.float32)
    low, high = float(saliency.min()), float(saliency.max())
    if high - low < 1e-12:
        return np.zeros_like(saliency)
    return (saliency - low) / (high - low)


def top_classes(probabilities: np.ndarray, top_k: int) -> list[int]:
    """Indices of the ``top_k`` most probable classes, best first."""
    order = np.argsort(probabilities)[::-1]
    return [int(i) for i in order[:top_k]]
