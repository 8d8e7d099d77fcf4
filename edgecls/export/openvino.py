"""OpenVINO IR export: ``openvino.convert_model(saved_model)`` -> fp32/fp16 IR, or
INT8 through NNCF (``nncf.quantize``; ``nncf.quantize_with_accuracy_control`` with a
budget), INT8 weight-only compression for ``dynamic``.

INT8 uses NNCF's ``OverflowFix.ENABLE`` (7-bit weights in every layer): x86 CPUs
without VNNI saturate int16 accumulators otherwise, and an artifact does not know the
CPU it will run on. The .xml/.bin pair is written to a temporary folder and renamed
into place (.bin first), so no half-written IR is ever visible.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.errors import ConfigError, ModelError
from edgecls.export import metadata as md
from edgecls.export.base import EXPORTERS, Exporter, ExportSource, QuantizationConfig, Remedy
from edgecls.export.quiet import logger_level
from edgecls.formats import OPENVINO
from edgecls.runtime import integrity

_METHODS = ("default", "accuracy_control")


@EXPORTERS.register("openvino")
class OpenVinoExporter(Exporter):
    """OpenVINO IR (.xml + .bin); INT8 via NNCF post-training quantization."""

    name = "openvino"
    format = OPENVINO

    def export(self, source: ExportSource, quant: QuantizationConfig, out: Path) -> Path:
        self.check_precision(quant.precision)
        model = convert(source)
        settings: dict[str, Any] = {}
        if quant.precision == "int8":
            model, settings = _quantize(model, quant)
        elif quant.precision == "dynamic":
            import nncf

            model = nncf.compress_weights(model)
        meta = md.for_artifact(source.metadata, precision=quant.precision,
                               input_dtype="float32", extra={"openvino": settings},
                               weights_digest=integrity.WEIGHTS_PLACEHOLDER)
        md.embed_openvino(model, meta)
        save_ir_atomic(model, out, compress_to_fp16=quant.precision == "fp16")
        return out

    def settings(self, quant: QuantizationConfig) -> dict[str, Any]:
        out = quant.settings()
        if quant.precision == "int8":
            out.update(overflow_fix="enable", compress_to_fp16=False)
        elif quant.precision == "dynamic":
            out.update(weights="int8 (nncf.compress_weights)")
        return out

    def remedies(self, source: ExportSource, quant: QuantizationConfig,
                 tried: list[QuantizationConfig]) -> list[Remedy]:
        if quant.method == "accuracy_control" or quant.validation is None:
            return []
        return [Remedy(f"nncf.quantize_with_accuracy_control(max_drop={quant.max_drop.fraction:.3f}) "
                       "keeps the most sensitive layers in float",
                       quant.replace(method="accuracy_control"))]


def convert(source: ExportSource) -> Any:
    """The float ``openvino.Model`` of the SavedModel (converted once, cached in work_dir)."""
    import openvino as ov

    cached = source.work_dir / ("float_openvino_dynamic.xml" if source.dynamic_batch
                                else "float_openvino.xml")
    if not cached.is_file():
        save_ir_atomic(_convert_saved_model(source), cached, compress_to_fp16=False)
    return ov.Core().read_model(str(cached))


def _convert_saved_model(source: ExportSource) -> Any:
    import openvino as ov

    _, height, width, _ = source.input_shape
    try:
        return ov.convert_model(str(source.saved_model), input=[source.batch_dim(OPENVINO), height, width, 3])
    except Exception as exc:  # OpenVINO's frontends raise several types
        text = str(exc).strip() or type(exc).__name__
        raise ModelError(f"OpenVINO conversion failed: {_op_lines(text)}",
                         "replace the named op with a standard layer, or export to tflite/onnx"
                         ) from None


def _op_lines(text: str) -> str:
    """The line naming the unconverted operations, else the first line."""
    lines = [ln.strip(" -") for ln in text.splitlines() if "operations:" in ln]
    return (lines[0] if lines else text.splitlines()[0])[:300]


def _quantize(model: Any, quant: QuantizationConfig) -> tuple[Any, dict[str, Any]]:
    import nncf
    from nncf.quantization.advanced_parameters import (AdvancedQuantizationParameters,
                                                       OverflowFix)

    if quant.method not in _METHODS:
        raise ConfigError(f"unknown OpenVINO calibration method {quant.method!r}",
                          f"choose one of: {', '.join(_METHODS)}")
    calibration = nncf.Dataset(quant.calibration, _as_batch)
    params = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE)
    ignored = nncf.IgnoredScope(names=list(quant.exclude)) if quant.exclude else None
    common = dict(subset_size=len(quant.calibration), ignored_scope=ignored)
    settings = {"overflow_fix": "enable", "method": quant.method}
    if quant.method == "accuracy_control":
        if quant.validation is None:
            raise ConfigError("accuracy-controlled quantization needs validation images")
        images, labels = quant.validation
        validation = nncf.Dataset(list(zip(images, labels)), lambda item: _as_batch(item[0]))
        with logger_level("nncf", logging.WARNING):  # hundreds of INFO lines otherwise
            quantized = nncf.quantize_with_accuracy_control(
                model, calibration, validation, validation_fn=_accuracy, max_drop=quant.max_drop.fraction,
                advanced_quantization_parameters=params, **common)
        settings["max_drop"] = quant.max_drop.fraction
        return quantized, settings
    with logger_level("nncf", logging.WARNING):
        return nncf.quantize(model, calibration, advanced_parameters=params, **common), settings


def _as_batch(image: np.ndarray) -> np.ndarray:
    """One prepared HWC image as a float32 batch of one."""
    return image[None].astype(np.float32)


def _accuracy(compiled_model: Any, items: Any) -> float:
    output = compiled_model.outputs[0]
    hits = [int(np.argmax(compiled_model(_as_batch(image))[output]) == label)
            for image, label in items]
    return float(np.mean(hits)) if hits else 0.0


def save_ir_atomic(model: Any, out: Path, compress_to_fp16: bool) -> None:
    """Saves ``out`` (.xml) and its .bin via a temporary folder and two renames."""
    import openvino as ov

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    try:
        ov.save_model(model, str(tmp_dir / out.name), compress_to_fp16=compress_to_fp16)
        integrity.stamp_file(tmp_dir / out.name)  # last step: digests of the final .bin and .xml
        for side in OPENVINO.side_files(out):  # the .bin before the .xml that names it
            os.replace(tmp_dir / side.name, side)
        os.replace(tmp_dir / out.name, out)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
