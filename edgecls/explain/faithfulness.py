"""Deletion and insertion AUC (Petsiuk et al., 2018): how faithful a heatmap is.

Deletion blacks out the image from most to least salient and records the class
probability; a faithful map makes it fall fast (low AUC is better). Insertion reveals
the image over a blurred copy in the same order; it should rise fast (high AUC is
better). The order is over square cells (``cells`` per side, 8 px at 224), not single
pixels: scattered single-pixel deletion is out-of-distribution noise that kills the
prediction whatever the order, so a random map would score best. numpy + OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgecls.explain.heatmap import PredictFn

STEPS = 32
CELLS = 28


@dataclass
class Faithfulness:
    """Deletion AUC (lower is better) and insertion AUC (higher is better), both 0..1."""

    deletion: float
    insertion: float


def _curve(predict: PredictFn, start: np.ndarray, finish: np.ndarray, order: np.ndarray,
           class_index: int, steps: int, batch_size: int) -> float:
    """AUC of the class probability while pixels move from ``start`` to ``finish``."""
    height, width = start.shape[:2]
    counts = np.linspace(0, order.size, steps + 1).astype(int)
    images = []
    for count in counts:
        mask = np.zeros(height * width, bool)
        mask[order[:count]] = True
        mask = mask.reshape(height, width, 1)
        images.append(np.where(mask, finish, start))
    scores = np.concatenate([predict(np.stack(images[i:i + batch_size]).astype(np.float32))[:, class_index]
                             for i in range(0, len(images), batch_size)])
    return float(np.trapezoid(scores, dx=1.0 / steps))


def cell_order(heatmap: np.ndarray, cells: int = CELLS) -> np.ndarray:
    """Pixel indices, cell by cell from the most to the least salient cell (mean value)."""
    height, width = heatmap.shape
    means = cv2.resize(np.asarray(heatmap, np.float32), (cells, cells), interpolation=cv2.INTER_AREA)
    rows = np.minimum(np.arange(height) * cells // height, cells - 1)
    cols = np.minimum(np.arange(width) * cells // width, cells - 1)
    cell_of_pixel = (rows[:, None] * cells + cols[None, :]).ravel()
    rank = np.empty(cells * cells, np.int64)
    rank[np.argsort(-means.ravel(), kind="stable")] = np.arange(cells * cells)
    return np.argsort(rank[cell_of_pixel], kind="stable")


def deletion_insertion(predict: PredictFn, prepared: np.ndarray, heatmap: np.ndarray,
                       class_index: int, baseline: np.ndarray, steps: int = STEPS,
                       batch_size: int = 11, cells: int = CELLS) -> Faithfulness:
    """Deletion and insertion AUC of one heatmap (H, W) for one prepared image."""
    order = cell_order(heatmap, min(cells, *heatmap.shape))
    black = np.broadcast_to(baseline, prepared.shape).astype(np.float32)
    blurred = cv2.GaussianBlur(prepared.astype(np.float32), (0, 0), sigmaX=max(1.0, prepared.shape[1] / 20))
    deletion = _curve(predict, prepared, black, order, class_index, steps, batch_size)
    insertion = _curve(predict, blurred, prepared, order, class_index, steps, batch_size)
    return Faithfulness(deletion, insertion)
