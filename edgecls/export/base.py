"""The Exporter interface, quantization configs and the exporter registry.

One file per format (``tflite.py``, ``onnx.py``, ``openvino.py``); each registers an
``Exporter`` subclass in ``EXPORTERS``. An exporter turns an ``ExportSource`` (the
float Keras model, its SavedModel and the metadata) into one artifact for one
``QuantizationConfig``. Quantization configs are built with named constructors::

    QuantizationConfig.for_int8(calibration_images, method="entropy")
    QuantizationConfig.for_float16()
    QuantizationConfig.for_dynamic()
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgecls.errors import ConfigError
from edgecls.formats import FORMATS, IO_TYPES, PRECISIONS, Format
from edgecls.registry import Registry
from edgecls.runtime.metadata import ModelMetadata
from edgecls.stats import DropBudget

EXPORTERS: Registry = Registry(
    "export format", modules=[f"edgecls.export.{fmt.exporter}" for fmt in FORMATS])


@dataclass(frozen=True)
class QuantizationConfig:
    """How to quantize one artifact.

    Attributes:
        precision: one of ``PRECISIONS``.
        calibration: prepared NHWC images (RGB 0..255, uint8 or float32) for ``int8``.
        method: calibration method; the exporter maps it ("nncf",
            "nncf_accuracy_control", "minmax", "entropy", "percentile" for ONNX;
            "default" / "accuracy_control" for OpenVINO).
        io_type: input/output dtype of a full-integer TFLite model.
        per_channel: per-channel weight quantization.
        exclude: layer / node names kept in float (the sensitive ones).
        max_drop: accuracy budget for accuracy-controlled quantization (NNCF takes
            ``max_drop.fraction``; the manifest records that fraction).
        validation: (uint8 or float32 images, labels) for accuracy-controlled quantization.
    """

    precision: str = "fp32"
    calibration: np.ndarray | None = field(default=None, repr=False, compare=False)
    method: str = "default"
    io_type: str = "uint8"
    per_channel: bool = True
    exclude: tuple[str, ...] = ()
    max_drop: DropBudget = DropBudget(1.0)
    validation: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False,
                                                            compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.max_drop, DropBudget):  # a bare number hides its unit
            raise TypeError(f"max_drop must be a DropBudget (pp or from_fraction), not {self.max_drop!r}")

    @classmethod
    def for_float32(cls) -> QuantizationConfig:
        """No quantization."""
        return cls(precision="fp32")

    @classmethod
    def for_float16(cls) -> QuantizationConfig:
        """Weights stored as float16."""
        return cls(precision="fp16")

    @classmethod
    def for_dynamic(cls) -> QuantizationConfig:
        """INT8 weights, float activations (no calibration data needed)."""
        return cls(precision="dynamic")

    @classmethod
    def for_int8(cls, calibration: np.ndarray, method: str = "default",
                 io_type: str = "uint8", **options: Any) -> QuantizationConfig:
        """Full-integer INT8 calibrated on ``calibration`` (N, H, W, 3) RGB 0..255 images."""
        if calibration is None or len(calibration) == 0:
            raise ConfigError("INT8 export needs calibration images",
                              "pass --calibration PRESET or a folder of images")
        if io_type not in IO_TYPES:
            raise ConfigError(f"unknown input type {io_type!r}",
                              f"choose one of: {', '.join(IO_TYPES)}")
        return cls(precision="int8", calibration=np.asarray(calibration),
                   method=method, io_type=io_type, **options)

    @classmethod
    def for_precision(cls, precision: str, calibration: np.ndarray | None = None,
                      **int8_options: Any) -> QuantizationConfig:
        """The config for a precision name (``fp32``, ``fp16``, ``dynamic``, ``int8``)."""
        if precision == "int8":
            return cls.for_int8(calibration, **int8_options)  # type: ignore[arg-type]
        makers = {"fp32": cls.for_float32, "fp16": cls.for_float16, "dynamic": cls.for_dynamic}
        if precision not in makers:
            raise ConfigError(f"unknown precision {precision!r}",
                              f"choose from: {', '.join(PRECISIONS)}")
        return makers[precision]()

    def replace(self, **changes: Any) -> QuantizationConfig:
        """A copy with some fields changed (used by the accuracy remedies)."""
        return dataclasses.replace(self, **changes)

    def settings(self) -> dict[str, Any]:
        """The JSON-friendly settings recorded in the manifest."""
        out: dict[str, Any] = {"precision": self.precision}
        if self.precision == "int8":
            out.update(method=self.method, per_channel=self.per_channel,
                       calibration_images=int(len(self.calibration)),
                       exclude=list(self.exclude))
        return out

    def calibration_batches(self, batch_size: int = 1) -> Iterator[np.ndarray]:
        """The calibration images as float32 batches of ``batch_size``."""
        assert self.calibration is not None
        for start in range(0, len(self.calibration), batch_size):
            yield self.calibration[start:start + batch_size].astype(np.float32)


@dataclass
class ExportSource:
    """The float model an exporter starts from.

    Attributes:
        model: the float ``keras.Model`` (RGB 0..255 in, probabilities out).
        saved_model: a SavedModel directory written by ``model.export``.
        metadata: the metadata every artifact of this model carries.
        work_dir: scratch directory for intermediate files shared by exporters.
        dynamic_batch: ONNX and OpenVINO inputs take any batch size; by default the
            batch is 1 and static, which OpenVINO's benchmark_app and NPU plugin,
            TensorRT and MediaPipe expect (TFLite is batch 1 either way).
    """

    model: Any
    saved_model: Path
    metadata: ModelMetadata
    work_dir: Path
    dynamic_batch: bool = False

    def batch_dim(self, fmt: Format) -> int:
        """The input's batch dimension in an artifact of ``fmt`` (-1: dynamic, for a
        format that offers it when ``dynamic_batch`` asks for it)."""
        return -1 if self.dynamic_batch and fmt.dynamic_batch else 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Static (1, H, W, 3) input shape."""
        height, width = self.metadata.input_size
        return (1, int(height), int(width), 3)


@dataclass
class Remedy:
    """One retry when an INT8 artifact misses its accuracy budget.

    ``quick``: it costs about one more conversion (no accuracy-controlled search), so it is
    also worth a try when the estimate is within budget but a real drop's interval reaches
    past it (``export.pipeline.remedy_trigger``).
    """

    description: str
    config: QuantizationConfig
    quick: bool = False


class Exporter(ABC):
    """Writes one artifact format. Subclasses set ``name`` and ``format``."""

    name: str = ""
    format: Format

    @property
    def precisions(self) -> tuple[str, ...]:
        """What this exporter writes: its format's precisions."""
        return self.format.precisions

    @property
    def suffix(self) -> str:
        """The artifact's suffix, e.g. ``.tflite``."""
        return self.format.suffix

    def artifact_name(self, stem: str, quant: QuantizationConfig) -> str:
        """File name of the artifact, e.g. ``model_int8.tflite``."""
        return f"{stem}_{quant.precision}{self.suffix}"

    @abstractmethod
    def export(self, source: ExportSource, quant: QuantizationConfig, out: Path) -> Path:
        """Writes the artifact to ``out`` atomically, with metadata embedded; returns it."""

    def remedies(self, source: ExportSource, quant: QuantizationConfig,
                 tried: list[QuantizationConfig]) -> list[Remedy]:
        """Cheap retries to try, in order, when ``quant`` missed the budget. Default: none."""
        return []

    def last_resort(self, source: ExportSource, quant: QuantizationConfig) -> Remedy | None:
        """The costly retry tried after every other one failed (it may analyse the model
        layer by layer, so it is only built when reached). Default: none."""
        return None

    def settings(self, quant: QuantizationConfig) -> dict[str, Any]:
        """What this format did with ``quant``, for the manifest."""
        return quant.settings()

    def check_precision(self, precision: str) -> None:
        """Raises a user error when this format cannot produce ``precision``."""
        if precision not in self.precisions:
            raise ConfigError(f"{self.name} export does not support precision {precision!r}",
                              f"{self.name} supports: {', '.join(self.precisions)}")


def get_exporter(name: str) -> Exporter:
    """An instance of the exporter registered as ``name`` (``tflite``, ``onnx``, ``openvino``)."""
    return EXPORTERS.get(name)()


def list_formats() -> list[str]:
    """Names of the registered export formats."""
    return EXPORTERS.list()
