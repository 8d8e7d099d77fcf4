"""A model's own tensors (``TensorInfo``) and the conversions between them and the
runtime's float32 NHWC batches.

Every backend uses these, so quantization and layout are handled the same way
whichever library runs the model. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_INT_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


@dataclass
class TensorInfo:
    """Shape, dtype and quantization of a model input or output as stored in the file."""

    shape: tuple[int, ...]
    dtype: str
    quantization: tuple[float, int] | None = None  # (scale, zero_point) for int8/uint8
    layout: str = "NHWC"

    @property
    def is_quantized(self) -> bool:
        """True for an int8/uint8 tensor that carries a scale and zero point."""
        return self.dtype in ("int8", "uint8") and self.quantization is not None

    @property
    def spatial_size(self) -> tuple[int, int] | None:
        """(height, width) of an image tensor, or None when unknown or dynamic."""
        if len(self.shape) != 4:
            return None
        h, w = (self.shape[2], self.shape[3]) if self.layout == "NCHW" else self.shape[1:3]
        return (int(h), int(w)) if h > 0 and w > 0 else None


def tensor_dict(name: str, info: TensorInfo) -> dict[str, Any]:
    """A JSON-friendly description of one tensor."""
    quantization = None
    if info.quantization is not None:
        quantization = {"scale": float(info.quantization[0]), "zero_point": int(info.quantization[1])}
    return {"name": name, "dtype": info.dtype, "shape": [int(d) for d in info.shape],
            "layout": info.layout if len(info.shape) == 4 else None, "quantization": quantization}


def guess_layout(shape: tuple[int, ...]) -> str:
    """'NCHW' when the channel axis (3 or 1) is second and the last axis is not, else 'NHWC'."""
    if len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3):
        return "NCHW"
    return "NHWC"


def normalize_shape(shape: object) -> tuple[int, ...]:
    """Shape with dynamic dimensions (None, names, 0, -1) as -1."""
    dims = []
    for dim in shape:  # type: ignore[union-attr]
        try:
            value = int(dim)
        except (TypeError, ValueError):
            value = -1
        dims.append(value if value > 0 else -1)
    return tuple(dims)


def quantize(values: np.ndarray, dtype: str, quantization: tuple[float, int]) -> np.ndarray:
    """Float values -> int8/uint8 with the tensor's scale and zero point (round, clip)."""
    scale, zero_point = quantization
    low, high = _INT_RANGES[dtype]
    q = np.rint(values * np.float32(1.0 / scale)) + np.float32(zero_point)
    return np.clip(q, low, high).astype(dtype)


def dequantize(values: np.ndarray, quantization: tuple[float, int]) -> np.ndarray:
    """int8/uint8 values -> float32 with the tensor's scale and zero point."""
    scale, zero_point = quantization
    return (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def to_model_input(batch: np.ndarray, info: TensorInfo) -> np.ndarray:
    """A float32 NHWC batch in the model's input dtype, quantization and layout."""
    x = batch if batch.ndim == 4 else batch[None]
    if info.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    if info.is_quantized:
        x = quantize(x, info.dtype, info.quantization)  # type: ignore[arg-type]
    elif x.dtype != np.dtype(info.dtype):
        x = x.astype(info.dtype)
    return np.ascontiguousarray(x)


def from_model_output(raw: np.ndarray, info: TensorInfo) -> np.ndarray:
    """The model's raw output as float32 scores of shape (N, classes)."""
    if info.is_quantized:
        scores = dequantize(raw, info.quantization)  # type: ignore[arg-type]
    else:
        scores = raw.astype(np.float32, copy=False)
    return scores.reshape(scores.shape[0], -1)

