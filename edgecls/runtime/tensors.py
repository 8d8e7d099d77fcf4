"""Conversions between the runtime's float32 NHWC batches and a model's own tensors.

Every backend uses these, so quantization and layout are handled the same way
whichever library runs the model. numpy only.
"""

from __future__ import annotations

import numpy as np

from edgecls.runtime.base import TensorInfo

_INT_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


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


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, classes) float32 scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
