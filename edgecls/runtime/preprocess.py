"""The one place where a frame becomes model input.

Training, calibration, validation and the runtime all call ``prepare`` so that the
training/deployment preprocessing mismatch cannot happen. numpy + OpenCV only.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecls.errors import DataError
from edgecls.runtime.image_header import check_pixels
from edgecls.runtime.metadata import Preprocessing

_INTERPOLATION = {
    # INTER_LINEAR_EXACT, not INTER_LINEAR: OpenCV's fast bilinear shrink rounds differently
    # on x86_64 and aarch64 (±1 on ~14% of pixels, found by scripts/check-aarch64.sh);
    # the exact variant is bit-identical on both, at about 0.4 ms more per 640x480 frame.
    "bilinear": cv2.INTER_LINEAR_EXACT,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
}


def read_image_bgr(path: str | Path) -> np.ndarray:
    """Reads an image file as a 3-channel BGR uint8 array (gray and RGBA become BGR).

    Raises:
        DataError: the file cannot be decoded, or its header declares more pixels than
            ``image_header.max_pixels()`` (checked before decoding).
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    check_pixels(memoryview(data), path)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(f"cannot decode image {path}", "is it a valid JPEG/PNG/BMP/WebP file?")
    return image


def prepare(
    frame_bgr: np.ndarray,
    size: tuple[int, int],
    pre: Preprocessing | None = None,
) -> np.ndarray:
    """Turns one BGR uint8 frame into a float32 HWC array in the model's color order.

    Args:
        frame_bgr: HxWx3 (or HxW gray, or HxWx4 BGRA) uint8 image as OpenCV gives it.
        size: (height, width) of the model input.
        pre: preprocessing description; defaults to the edgecls convention.

    Returns:
        float32 array of shape (height, width, 3) holding pixel * scale + offset.
    """
    pre = pre or Preprocessing()
    image = _to_bgr(frame_bgr)
    image = _fit(image, size, pre)
    if pre.color.upper() == "RGB":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    out = image.astype(np.float32)
    if pre.scale != 1.0 or pre.offset != 0.0:
        out = out * np.float32(pre.scale) + np.float32(pre.offset)
    return out


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def _fit(image: np.ndarray, size: tuple[int, int], pre: Preprocessing) -> np.ndarray:
    height, width = size
    if pre.resize == "center_crop":
        image = _center_crop_to_aspect(image, width / height)
    if image.shape[:2] == (height, width):
        return image
    interpolation = _INTERPOLATION.get(pre.interpolation, cv2.INTER_LINEAR_EXACT)
    if interpolation == cv2.INTER_AREA:
        image = _bilinear_to_area_multiple(image, size)
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _bilinear_to_area_multiple(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Speeds up large "area" shrinks (e.g. 640x480 -> 224): a bilinear resize to k times
    the target first, so the area step has an integer factor (OpenCV's fast path).
    Within about 0.2 grey levels of a direct area resize at a quarter of its cost."""
    height, width = size
    k = int(min(image.shape[0] / height, image.shape[1] / width))
    if k < 2:
        return image
    return cv2.resize(image, (width * k, height * k), interpolation=cv2.INTER_LINEAR_EXACT)


def _center_crop_to_aspect(image: np.ndarray, aspect: float) -> np.ndarray:
    h, w = image.shape[:2]
    if w / h > aspect:
        new_w = int(round(h * aspect))
        x0 = (w - new_w) // 2
        return image[:, x0 : x0 + new_w]
    new_h = int(round(w / aspect))
    y0 = (h - new_h) // 2
    return image[y0 : y0 + new_h]


def prepare_uint8(
    frame_bgr: np.ndarray,
    size: tuple[int, int],
    pre: Preprocessing | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``prepare`` without the float conversion: uint8 HWC pixels in the model's color order.

    The same resize and color steps as ``prepare`` (so ``prepare_uint8(f).astype(float32)``
    equals ``prepare(f)`` for identity scale/offset), written into ``out`` when given:
    the runtime's lean per-frame path for uint8/int8 models uses it with a preallocated
    input buffer.
    """
    pre = pre or Preprocessing()
    image = _fit(_to_bgr(frame_bgr), size, pre)
    if out is None:
        out = np.empty((size[0], size[1], 3), dtype=np.uint8)
    if pre.color.upper() == "RGB":
        result = cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=out)
        if not np.shares_memory(result, out):  # OpenCV reallocated: copy into place
            np.copyto(out, result)
    else:
        np.copyto(out, image)
    return out
