"""Pictures of explanations, drawn with numpy and OpenCV only (they run on a Pi).

A panel is one row per model: the original image, then one heatmap overlay per
explained class, each captioned with label, score and method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from edgecls.errors import EdgeclsError
from edgecls.explain.compare import HeatmapDifference
from edgecls.explain.heatmap import Explanation

TILE = 224  # pixels per image side in a panel
THUMB = 160  # pixels per image side in a contact sheet
BAND = 22  # caption band height
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_COLORMAP = getattr(cv2, "COLORMAP_TURBO", cv2.COLORMAP_JET)


def fit(image_bgr: np.ndarray, side: int = TILE) -> np.ndarray:
    """The image squashed to ``side`` x ``side`` (as the model sees it: stretched)."""
    return cv2.resize(image_bgr, (side, side), interpolation=cv2.INTER_AREA)


def overlay(image_bgr: np.ndarray, heatmap: np.ndarray, side: int = TILE, alpha: float = 0.5) -> np.ndarray:
    """The heatmap (0..1) in false colour blended over the image, ``side`` pixels square."""
    heat = cv2.resize(np.clip(heatmap, 0, 1), (side, side), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), _COLORMAP)
    return cv2.addWeighted(fit(image_bgr, side), 1 - alpha, colored, alpha, 0)


def captioned(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with a dark caption band above it; the text is shrunk to fit."""
    band = np.full((BAND, tile.shape[1], 3), 32, np.uint8)
    scale = 0.45
    while scale > 0.25 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > tile.shape[1] - 6:
        scale -= 0.05
    cv2.putText(band, text, (3, BAND - 7), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([band, tile])


def explanation_tile(image_bgr: np.ndarray, explanation: Explanation, side: int = TILE) -> np.ndarray:
    """One captioned overlay: "label 0.93 (rise)"."""
    text = f"{explanation.class_name} {explanation.score:.2f} ({explanation.method})"
    return captioned(overlay(image_bgr, explanation.heatmap, side), text)


def model_row(image_bgr: np.ndarray, explanations: Sequence[Explanation], model_name: str,
              side: int = TILE) -> np.ndarray:
    """Original image (captioned with the model name) beside one overlay per class."""
    tiles = [captioned(fit(image_bgr, side), model_name)]
    tiles += [explanation_tile(image_bgr, e, side) for e in explanations]
    return np.hstack(_spaced(tiles))


def panel(image_bgr: np.ndarray, rows: Sequence[tuple[str, Sequence[Explanation]]],
          differences: Sequence[HeatmapDifference] = (), side: int = TILE) -> np.ndarray:
    """Rows of ``model_row`` stacked; with two models, a line with how much they differ."""
    drawn = [model_row(image_bgr, explanations, name, side) for name, explanations in rows]
    width = max(r.shape[1] for r in drawn)
    drawn = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in drawn]
    if differences:
        text = "  ".join(f"#{i + 1}: rank corr {d.rank_correlation:.2f}, top-20% IoU {d.top_overlap:.2f}"
                         for i, d in enumerate(differences))
        drawn.append(captioned(np.full((4, width, 3), 255, np.uint8), f"difference  {text}"))
    return np.vstack(_spaced(drawn, axis=0))


def contact_sheet(tiles: Sequence[np.ndarray], columns: int | None = None) -> np.ndarray:
    """Many equally sized tiles in a grid (white where the last row is short)."""
    if not tiles:
        raise EdgeclsError("no images to put on a contact sheet")
    columns = columns or min(6, math.ceil(math.sqrt(len(tiles))))
    height, width = tiles[0].shape[:2]
    blank = np.full((height, width, 3), 255, np.uint8)
    padded = list(tiles) + [blank] * (-len(tiles) % columns)
    rows = [np.hstack(_spaced(padded[i:i + columns])) for i in range(0, len(padded), columns)]
    return np.vstack(_spaced(rows, axis=0))


def encode_png(image_bgr: np.ndarray) -> bytes:
    """PNG bytes of a BGR image."""
    ok, data = cv2.imencode(".png", image_bgr)
    if not ok:
        raise EdgeclsError("OpenCV could not encode a PNG")
    return data.tobytes()


def _spaced(images: Sequence[np.ndarray], axis: int = 1, gap: int = 4) -> list[np.ndarray]:
    """The images with a white gap after each but the last (for hstack/vstack)."""
    out: list[np.ndarray] = []
    for i, image in enumerate(images):
        out.append(image)
        if i < len(images) - 1:
            shape = (image.shape[0], gap, 3) if axis == 1 else (gap, image.shape[1], 3)
            out.append(np.full(shape, 255, np.uint8))
    return out
