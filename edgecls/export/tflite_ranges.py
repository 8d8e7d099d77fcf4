"""Percentile activation ranges for the converter's own INT8 quantizer.

The converter quantizes in two steps: a calibrate-only pass records each activation
tensor's absolute min/max over the calibration images in the float flatbuffer
(``TFLiteConverter._experimental_calibrate_only``), then the MLIR quantizer
(``tensorflow.lite.python.convert.mlir_quantize``) turns those ranges into scales. One
rare extreme value (a hard-swish or squeeze-excite outlier) widens a tensor's range and
coarsens its step for every other image. This path keeps both official steps and only
replaces, between them, each activation's min/max by the ``percentile``-th and
``100 - percentile``-th percentile of its values over the same images (exact, streamed
per tensor: only the most extreme values are kept).

Ranges left as the converter set them: the model inputs (their range is the input
type's), and outputs of ops whose quantized output range is fixed by the op
(softmax, logistic, tanh...), where the quantizer ignores statistics anyway.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

from edgecls.errors import ModelError
from edgecls.export.quiet import native_stderr_muted
from edgecls.export.tflite_quant import op_name, tensor_name

# Clipping at the 99.99th percentile agreed best with float on MobileNetV3-Large from scratch
# (1,241 held-out images: 96.7 % top-1 agreement against 95.4 % at 99.999, 91.6 % at 99.9 and
# with the mean of per-image min/max, 92.3 % for the converter's own min/max;
# benchmarks/tflite_percentiles.py, docs/gate.md).
DEFAULT_PERCENTILE = 99.99
# Ops whose output range the quantizer fixes or that must keep the converter's statistics.
_KEPT_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX", "QUANTIZE", "DEQUANTIZE",
                       "ARG_MAX", "ARG_MIN"})
_HINT = "export with the default TFLite quantizer (--method tflite-converter)"


class Tails:
    """The ``k`` largest and ``k`` smallest values seen of one tensor, streamed, and each
    image's own min/max."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.total = 0
        self.high = np.empty(0, np.float32)
        self.low = np.empty(0, np.float32)
        self.image_extremes: list[tuple[float, float]] = []

    def add(self, values: np.ndarray) -> None:
        """Takes in one image's values of the tensor."""
        flat = values.reshape(-1).astype(np.float32, copy=False)
        self.total += flat.size
        self.image_extremes.append((float(flat.min()), float(flat.max())))
        if len(self.high) == self.k:  # only values beyond the current tails can enter
            high, low = flat[flat > self.high[0]], flat[flat < self.low[0]]
        else:
            high = low = flat
        self.high = _extreme(np.concatenate([self.high, _extreme(high, self.k, True)]),
                             self.k, True)
        self.low = _extreme(np.concatenate([self.low, _extreme(low, self.k, False)]),
                            self.k, False)
        self.high.sort()  # the tails' innermost values first: the next entry thresholds
        self.low[::-1].sort()

    def value_range(self, percentile: float) -> tuple[float, float]:
        """The nearest-rank ``100 - percentile``-th and ``percentile``-th percentiles of
        every value seen (exact while the tail holds at most ``k`` values)."""
        rank = math.ceil(self.total * (100.0 - percentile) / 100.0)
        rank = min(max(1, rank), len(self.high))
        return float(self.low[-rank]), float(self.high[-rank])

    def mean_image_range(self) -> tuple[float, float]:
        """The mean over images of each image's min and max."""
        lows, highs = zip(*self.image_extremes)
        return float(np.mean(lows)), float(np.mean(highs))


def _extreme(values: np.ndarray, k: int, largest: bool) -> np.ndarray:
    if values.size <= k:
        return values
    if largest:
        return np.partition(values, values.size - k)[values.size - k:]
    return np.partition(values, k - 1)[:k]


def tensor_ranges(model: bytes) -> dict[str, tuple[float, float]]:
    """The calibrated min/max of every activation tensor of ``model``, by tensor name."""
    objects = _read(model)
    graph = objects.subgraphs[0]
    return {tensor_name(graph.tensors[index].name): _minmax(graph.tensors[index])
            for index in _adjustable(objects)}


def percentile_ranges(calibrated: bytes, images: np.ndarray,
                      percentile: float = DEFAULT_PERCENTILE) -> dict[int, tuple[float, float]]:
    """Per adjustable activation tensor (by index): the percentile range of its values
    when the calibrated float model runs ``images`` ((N, H, W, 3) float32), widened to
    hold zero as the quantizer's ranges do."""
    tails = activation_tails(calibrated, images, percentile)
    return {index: _with_zero(stats.value_range(percentile)) for index, stats in tails.items()}


def activation_tails(calibrated: bytes, images: np.ndarray,
                     percentile: float) -> dict[int, Tails]:
    """Per adjustable activation tensor (by index): its streamed ``Tails`` over ``images``,
    deep enough for any percentile from ``percentile`` up."""
    from ai_edge_litert.interpreter import Interpreter

    if not 50.0 < percentile <= 100.0:
        raise ModelError(f"percentile {percentile} is outside (50, 100]", _HINT)
    wanted = _adjustable(_read(calibrated))
    with warnings.catch_warnings():  # "intended for debugging": reading tensors is the point
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=calibrated,
                                  experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    sizes = {d["index"]: int(np.prod(d["shape"])) for d in interpreter.get_tensor_details()}
    tail = (100.0 - percentile) / 100.0
    tails = {i: Tails(max(1, math.ceil(sizes[i] * len(images) * tail))) for i in wanted}
    entry = interpreter.get_input_details()[0]["index"]
    for image in images:
        interpreter.set_tensor(entry, np.asarray(image[None], np.float32))
        interpreter.invoke()
        for index, stats in tails.items():
            stats.add(interpreter.get_tensor(index))
    return tails


def _with_zero(value_range: tuple[float, float]) -> tuple[float, float]:
    return min(value_range[0], 0.0), max(value_range[1], 0.0)


def with_ranges(calibrated: bytes, ranges: dict[int, tuple[float, float]]) -> bytes:
    """``calibrated`` with the min/max of the tensors in ``ranges`` replaced; each new range
    lies within the old one (a percentile never exceeds the extremes)."""
    from tensorflow.lite.tools import flatbuffer_utils

    objects = _read(calibrated)
    tensors = objects.subgraphs[0].tensors
    for index, (low, high) in ranges.items():
        old_low, old_high = _minmax(tensors[index])
        low, high = max(low, old_low), min(high, old_high)
        if high > low:
            tensors[index].quantization.min = np.asarray([low], np.float32)
            tensors[index].quantization.max = np.asarray([high], np.float32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(objects))


def quantize(calibrated: bytes, io_type: str, per_channel: bool = True,
             denylisted_nodes: Sequence[str] = ()) -> bytes:
    """Full-integer INT8 of a calibrated float flatbuffer by the converter's MLIR
    quantizer, with ``io_type`` input and output as ``TFLiteConverter`` makes them; the
    tensors ``denylisted_nodes`` names stay float."""
    import tensorflow as tf
    from tensorflow.lite.python import convert

    dtype = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}[io_type]
    with native_stderr_muted():  # it prints its settings from C++
        return bytes(convert.mlir_quantize(calibrated, not per_channel, input_data_type=dtype,
                                           output_data_type=dtype,
                                           denylisted_nodes=list(denylisted_nodes) or None))


def quantize_with_percentile_ranges(calibrated: bytes, images: np.ndarray, io_type: str,
                                    per_channel: bool = True,
                                    percentile: float = DEFAULT_PERCENTILE) -> bytes:
    """The whole path: percentile ranges into ``calibrated``, then the MLIR quantizer."""
    ranges = percentile_ranges(calibrated, images, percentile)
    return quantize(with_ranges(calibrated, ranges), io_type, per_channel)


def _read(model: bytes) -> Any:
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        objects = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    except Exception as exc:  # a truncated or foreign buffer fails deep in flatbuffers
        raise ModelError(f"not a TFLite flatbuffer ({type(exc).__name__})", _HINT) from None
    if not objects.subgraphs or not any(_minmax(t) for t in objects.subgraphs[0].tensors):
        raise ModelError("the TFLite model carries no calibrated ranges (not the output of "
                         "the converter's calibrate-only pass)", _HINT)
    return objects


def _adjustable(objects: Any) -> list[int]:
    """Indices of calibrated activation tensors whose range this path may replace."""
    graph = objects.subgraphs[0]
    inputs = set(int(i) for i in graph.inputs)
    out = []
    for op in graph.operators:
        if op_name(objects, op) in _KEPT_OPS:
            continue
        out += [int(i) for i in op.outputs
                if i >= 0 and i not in inputs and _minmax(graph.tensors[i])]
    return out


def _minmax(tensor: Any) -> tuple[float, float] | None:
    q = tensor.quantization
    if q is None or q.min is None or q.max is None or len(q.min) != 1 or len(q.max) != 1:
        return None
    return float(q.min[0]), float(q.max[0])
