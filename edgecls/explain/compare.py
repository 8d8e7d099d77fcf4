"""How much two heatmaps of the same image differ (e.g. float vs INT8). numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TOP_FRACTION = 0.2
COMPARE_GRID = 28  # both maps are averaged to this grid first, so sizes may differ


@dataclass
class HeatmapDifference:
    """Agreement of two heatmaps.

    Attributes:
        rank_correlation: Spearman correlation of the cell values (1 = same ranking).
        top_overlap: intersection over union of the top-20% cells of each map (1 = same region).
    """

    rank_correlation: float
    top_overlap: float

    def to_dict(self) -> dict[str, float]:
        return {"rank_correlation": round(self.rank_correlation, 4),
                "top20_overlap": round(self.top_overlap, 4)}


def _cells(heatmap: np.ndarray, grid: int = COMPARE_GRID) -> np.ndarray:
    return cv2.resize(np.asarray(heatmap, np.float32), (grid, grid), interpolation=cv2.INTER_AREA).ravel()


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as Spearman's correlation needs."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two heatmaps (0 when either is constant)."""
    ra, rb = _ranks(_cells(a)), _ranks(_cells(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0


def top_region(heatmap: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Boolean mask of the ``fraction`` highest cells of a heatmap (on the compare grid)."""
    cells = _cells(heatmap)
    count = max(1, round(fraction * cells.size))
    mask = np.zeros(cells.size, bool)
    mask[np.argsort(cells, kind="stable")[::-1][:count]] = True
    return mask


def top_overlap(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Intersection over union of the top-``fraction`` regions of two heatmaps."""
    ta, tb = top_region(a, fraction), top_region(b, fraction)
    return float((ta & tb).sum() / max(1, (ta | tb).sum()))


def heatmap_difference(a: np.ndarray, b: np.ndarray) -> HeatmapDifference:
    """Rank correlation and top-20% overlap of two heatmaps of the same image."""
    return HeatmapDifference(rank_correlation(a, b), top_overlap(a, b))
