"""What ``Classifier`` accepts as an image, turned into the BGR uint8 array it runs on.

- a path (``str`` or ``Path``): read like ``edgecls run`` reads files (the pixel limit of
  ``image_header`` and the formats of ``formats.IMAGE_SUFFIXES``);
- anything that behaves like a PIL image (has ``mode`` and ``convert``): converted to RGB
  by itself, so its own mode decides the colour order (PIL is never imported here);
- a numpy array (or anything ``np.asarray`` takes) whose colour order ``channels`` states:
  ``"bgr"`` (OpenCV, the default), ``"rgb"`` (PIL, matplotlib, imageio) or ``"gray"``.
  HxW (or HxWx1) is gray whatever ``channels`` says, HxWx3 is colour, HxWx4 has alpha
  (dropped). uint8 holds 0..255; a float array must hold 0..1 (the float convention of
  scikit-image and torchvision) and is scaled by 255; other dtypes are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecls.errors import DataError
from edgecls.formats import IMAGE_SUFFIXES, is_image
from edgecls.runtime.preprocess import read_image_bgr

CHANNEL_ORDERS = ("bgr", "rgb", "gray")
_FROM_RGB = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGR}
_FROM_BGR = {4: cv2.COLOR_BGRA2BGR}


def to_bgr(image: Any, channels: str = "bgr") -> np.ndarray:
    """One image given any accepted way, as an HxWx3 BGR uint8 array.

    Raises:
        DataError: a path that is missing, not an image format, or not decodable.
        ValueError: ``channels`` is unknown, or the array's type, dtype or shape is not an image.
    """
    if channels == "bgr" and type(image) is np.ndarray and image.dtype == np.uint8 \
            and image.ndim == 3 and image.shape[2] == 3 and image.size:  # the per-frame path: as it is
        return image
    if channels not in CHANNEL_ORDERS:
        raise ValueError(f"channels={channels!r} is not one of {', '.join(map(repr, CHANNEL_ORDERS))}")
    if isinstance(image, (str, Path)):
        return _read_file(Path(image))
    if _is_pil_like(image):
        return cv2.cvtColor(_as_uint8(np.asarray(image.convert("RGB"))), cv2.COLOR_RGB2BGR)
    return _array_to_bgr(_as_array(image), channels)


def _read_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"image file {path} does not exist", "pass the path of an image file")
    if not is_image(path):
        raise DataError(f"{path} is not an image file edgecls reads",
                        f"use one of: {', '.join(IMAGE_SUFFIXES)}")
    return read_image_bgr(path)


def _is_pil_like(image: Any) -> bool:
    return isinstance(getattr(image, "mode", None), str) and callable(getattr(image, "convert", None))


def _as_array(image: Any) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if hasattr(image, "__array_interface__") or hasattr(image, "__array__"):
        return np.asarray(image)
    raise ValueError(f"cannot classify a {type(image).__name__}: pass an image path, a PIL image, "
                     "or a numpy array (HxW, HxWx3 or HxWx4) with channels='bgr'|'rgb'|'gray'")


def _as_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if not (np.isfinite(low) and np.isfinite(high)) or low < 0.0 or high > 1.0:
            raise ValueError(f"a float image must hold values in 0..1 (this one spans {low:g}..{high:g}); "
                             "pass uint8 for 0..255 pixels")
        return np.rint(array * 255.0).astype(np.uint8)
    raise ValueError(f"image dtype {array.dtype} is not supported: pass uint8 (0..255) or float (0..1)")


def _array_to_bgr(array: np.ndarray, channels: str) -> np.ndarray:
    shape = array.shape
    depth = 1 if array.ndim == 2 else shape[2] if array.ndim == 3 else None
    if depth not in (1, 3, 4) or min(shape[:2], default=0) == 0:
        raise ValueError(f"image array of shape {shape} is not an image: expected HxW, HxWx3 or HxWx4")
    if channels == "gray" and depth != 1:
        raise ValueError(f"channels='gray' does not fit an image of shape {shape}: "
                         "a gray image is HxW or HxWx1")
    pixels = _as_uint8(array)
    if depth == 1:  # one channel is gray whatever the order says
        return cv2.cvtColor(np.ascontiguousarray(pixels.reshape(shape[:2])), cv2.COLOR_GRAY2BGR)
    conversion = (_FROM_RGB if channels == "rgb" else _FROM_BGR).get(depth)
    return pixels if conversion is None else cv2.cvtColor(np.ascontiguousarray(pixels), conversion)
