"""Occlusion (Zeiler & Fergus, 2014): slide a black square over the image and record
how much each class's probability falls. Model-agnostic, deterministic, numpy only."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgecls.explain.heatmap import PredictFn


@dataclass
class OcclusionOptions:
    """Settings of occlusion.

    Attributes:
        window: side of the occluding square as a fraction of the input side.
        stride: step between windows as a fraction of the window.
        batch_size: occluded images per inference call.
    """

    window: float = 0.125
    stride: float = 0.5
    batch_size: int = 16

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _positions(length: int, window: int, step: int) -> list[int]:
    starts = list(range(0, max(1, length - window + 1), step))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def occlusion(predict: PredictFn, prepared: np.ndarray, classes: list[int], baseline: np.ndarray,
              options: OcclusionOptions | None = None) -> np.ndarray:
    """Raw occlusion saliency (len(classes), H, W): the mean drop in probability of each
    class over all windows covering a pixel.

    Args:
        predict: prepared float32 NHWC batch -> probabilities (N, classes).
        prepared: the image as model input, float32 (H, W, 3).
        classes: class indices to explain.
        baseline: what an occluded pixel becomes in model input space, (3,) or (H, W, 3).
        options: window, stride, batch size.
    """
    options = options or OcclusionOptions()
    height, width = prepared.shape[:2]
    window = max(1, round(options.window * min(height, width)))
    step = max(1, round(window * options.stride))
    boxes = [(y, x) for y in _positions(height, window, step) for x in _positions(width, window, step)]
    reference = predict(prepared[None].astype(np.float32))[0, classes]
    drop = np.zeros((len(classes), height, width), np.float64)
    cover = np.zeros((height, width), np.float64)
    filler = np.broadcast_to(baseline, prepared.shape).astype(np.float32)
    for start in range(0, len(boxes), options.batch_size):
        chunk = boxes[start:start + options.batch_size]
        batch = np.repeat(prepared[None].astype(np.float32), len(chunk), axis=0)
        for i, (y, x) in enumerate(chunk):
            batch[i, y:y + window, x:x + window] = filler[y:y + window, x:x + window]
        scores = predict(batch)[:, classes]
        for i, (y, x) in enumerate(chunk):
            drop[:, y:y + window, x:x + window] += (reference - scores[i])[:, None, None]
            cover[y:y + window, x:x + window] += 1
    return (drop / np.maximum(cover, 1)).astype(np.float32)
