"""RISE (Petsiuk et al., 2018): randomized input sampling, model-agnostic.

The image is multiplied by many random smooth masks; each class's heatmap is the sum
of the masks weighted by the class probability the model gives the masked image. The
probabilities are centred on their mean first (the covariance of score and mask per
pixel): otherwise the uneven coverage of a finite mask set, identical for every model
with the same seed, dominates the map wherever the score barely changes.
Only ``predict`` is needed, so it runs through any runtime backend (numpy + OpenCV).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from edgecls.explain.heatmap import PredictFn


@dataclass
class RiseOptions:
    """Settings of RISE; the defaults fit a Raspberry Pi's budget (about 500 inferences).

    Attributes:
        masks: number of random masks (more: smoother heatmaps, linear cost).
        grid: cells per side of each mask before upsampling.
        keep: probability that a cell is kept (not blacked out).
        batch_size: masked images per inference call.
        seed: mask seed; equal seeds give equal masks, so two models compare fairly.
    """

    masks: int = 500
    grid: int = 8
    keep: float = 0.5
    batch_size: int = 16
    seed: int = 0

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def rise_masks(rng: np.random.Generator, count: int, size: tuple[int, int], grid: int,
               keep: float) -> np.ndarray:
    """``count`` smooth masks (count, H, W) in 0..1: random cells, bilinearly upsampled and
    shifted by a random sub-cell offset so the cell borders do not show in the heatmap."""
    height, width = size
    cell_h, cell_w = int(np.ceil(height / grid)), int(np.ceil(width / grid))
    cells = (rng.random((count, grid, grid)) < keep).astype(np.float32)
    shifts = rng.integers(0, [cell_h, cell_w], size=(count, 2))
    masks = np.empty((count, height, width), np.float32)
    big = ((grid + 1) * cell_w, (grid + 1) * cell_h)
    for i in range(count):
        up = cv2.resize(cells[i], big, interpolation=cv2.INTER_LINEAR)
        dy, dx = shifts[i]
        masks[i] = up[dy:dy + height, dx:dx + width]
    return masks


def rise(predict: PredictFn, prepared: np.ndarray, classes: list[int], baseline: np.ndarray,
         options: RiseOptions | None = None) -> np.ndarray:
    """Raw RISE saliency (len(classes), H, W) for one prepared image.

    Args:
        predict: prepared float32 NHWC batch -> probabilities (N, classes).
        prepared: the image as model input, float32 (H, W, 3).
        classes: class indices to explain.
        baseline: what a blacked-out pixel becomes in model input space, (3,) or (H, W, 3).
        options: mask count, grid, keep probability, batch size, seed.
    """
    options = options or RiseOptions()
    rng = np.random.default_rng(options.seed)
    size = prepared.shape[:2]
    weighted = np.zeros((len(classes), *size), np.float64)
    coverage = np.zeros(size, np.float64)
    score_sum = np.zeros(len(classes), np.float64)
    difference = prepared.astype(np.float32) - baseline
    for start in range(0, options.masks, options.batch_size):
        count = min(options.batch_size, options.masks - start)
        masks = rise_masks(rng, count, size, options.grid, options.keep)
        batch = baseline + masks[..., None] * difference
        scores = predict(batch.astype(np.float32))[:, classes]  # (count, K)
        weighted += np.tensordot(scores.T, masks, axes=1)
        coverage += masks.sum(axis=0)
        score_sum += scores.sum(axis=0)
    mean_score = score_sum / options.masks
    saliency = weighted - mean_score[:, None, None] * coverage
    return (saliency / (options.masks * options.keep)).astype(np.float32)
