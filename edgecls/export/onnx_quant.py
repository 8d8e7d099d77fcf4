"""Static INT8 quantizers for ONNX models: NNCF's ONNX backend and ONNX Runtime's.

Both write QDQ models (QuantizeLinear/DequantizeLinear around float ops) that ONNX
Runtime fuses into integer kernels:

- ``nncf``: ``nncf.quantize`` (MinMax ranges, symmetric per-channel INT8 weights,
  symmetric activations: uint8 after ReLU, int8 elsewhere; fast bias correction of every
  layer with a bias). ``benchmarks/onnx_quantizers.py``: a tie with ONNX Runtime MinMax
  on Lite0/Imagenette (+0.31 vs -0.31 pp), worse on MobileNetV3-Large (+1.15 vs +0.76 pp)
  and 4x slower there (ONNX Runtime leaves int8-activation QDQ pairs unfused): a remedy.
- ``nncf_accuracy_control``: ``nncf.quantize_with_accuracy_control``; validates on
  held-out images and puts the layers that cost the most accuracy back in float.
- ``minmax`` / ``entropy`` / ``percentile``: ONNX Runtime ``quantize_static``, U8S8
  (uint8 asymmetric activations, int8 per-channel weights); MinMax is the default.

Validation inside accuracy control runs ONNX Runtime with ``session.x64quantprecision=1``
on CPUs whose U8S8 kernels saturate (see ``edgecls.runtime.cpu``), like the runtime does.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgecls.errors import ConfigError
from edgecls.export.quiet import logger_level
from edgecls.export.base import QuantizationConfig
from edgecls.runtime.cpu import cpu_info
from edgecls.runtime.onnxruntime import X64_QUANT_PRECISION

NNCF_METHODS = ("nncf", "nncf_accuracy_control")
ORT_METHODS = ("minmax", "entropy", "percentile")
METHODS = NNCF_METHODS + ORT_METHODS
DEFAULT_METHOD = "minmax"
# MinMax reduces each batch as it goes; Entropy/Percentile keep every activation in
# memory and need equal batch shapes, so they get single images.
_CALIBRATION_BATCH = {"minmax": 16, "entropy": 1, "percentile": 1}


def method_of(quant: QuantizationConfig) -> str:
    """The ONNX quantization method ``quant`` asks for ("default" is ``DEFAULT_METHOD``)."""
    name = DEFAULT_METHOD if quant.method == "default" else quant.method
    if name not in METHODS:
        raise ConfigError(f"unknown ONNX calibration method {quant.method!r}",
                          f"choose one of: {', '.join(METHODS)}")
    return name


def quantize(float_path: Path, quant: QuantizationConfig, work_dir: Path) -> Any:
    """The INT8 QDQ ``onnx.ModelProto`` of the float model at ``float_path``."""
    method = method_of(quant)
    if method in NNCF_METHODS:
        return quantize_nncf(float_path, quant)
    return quantize_onnxruntime(float_path, quant, work_dir)


def settings(quant: QuantizationConfig) -> dict[str, Any]:
    """Which quantizer made the artifact and its number formats (for the manifest)."""
    method = method_of(quant)
    if method in NNCF_METHODS:
        out = {"quantizer": "nncf", "method": method, "activations": "int8/uint8 symmetric",
               "weights": "int8 symmetric", "bias_correction": "fast", "format": "QDQ",
               "per_channel": quant.per_channel}
        if method == "nncf_accuracy_control":
            out["max_drop"] = quant.max_drop.fraction
        return out
    return {"quantizer": "onnxruntime", "method": method, "activations": "uint8",
            "weights": "int8", "format": "QDQ", "per_channel": quant.per_channel}


# --------------------------------------------------------------------------- NNCF

def quantize_nncf(float_path: Path, quant: QuantizationConfig) -> Any:
    """``nncf.quantize`` (or its accuracy-controlled variant) on the ONNX model."""
    import nncf
    import onnx
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    model = onnx.load(str(float_path))
    input_name = model.graph.input[0].name
    calibration = nncf.Dataset(quant.calibration, lambda image: _feed(input_name, image))
    params = AdvancedQuantizationParameters()
    if not quant.per_channel:
        params.weights_quantization_params = nncf.quantization.advanced_parameters.\
            QuantizationParameters(per_channel=False)
    ignored = nncf.IgnoredScope(names=list(quant.exclude), validate=False) if quant.exclude else None
    common = dict(subset_size=len(quant.calibration), ignored_scope=ignored)
    with logger_level("nncf", logging.WARNING):
        if method_of(quant) != "nncf_accuracy_control":
            return nncf.quantize(model, calibration, advanced_parameters=params, **common)
        if quant.validation is None:
            raise ConfigError("accuracy-controlled ONNX quantization needs validation images")
        images, labels = quant.validation
        validation = nncf.Dataset(list(zip(images, labels)),
                                  lambda item: _feed(input_name, item[0]))
        try:
            return nncf.quantize_with_accuracy_control(
                model, calibration, validation, validation_fn=_accuracy,
                max_drop=quant.max_drop.fraction, advanced_quantization_parameters=params, **common)
        finally:
            _SESSION_CACHE.clear()


def _feed(input_name: str, image: np.ndarray) -> dict[str, np.ndarray]:
    return {input_name: np.asarray(image, dtype=np.float32)[None]}


def _accuracy(model: Any, items: Any) -> tuple[float, list[float]]:
    """Top-1 accuracy of an ``onnx.ModelProto`` on (image, label) items through ORT, and
    the hit (1.0/0.0) of each item (NNCF ranks the layers to restore with these)."""
    session = _session_for(model)
    input_name = session.get_inputs()[0].name
    hits = [float(np.argmax(session.run(None, feed)[0]) == label)
            for feed, label in _feeds_with_labels(items, input_name)]
    return (float(np.mean(hits)) if hits else 0.0), hits


_SESSION_CACHE: list[tuple[Any, Any]] = []  # (model, session): NNCF asks item by item


def _session_for(model: Any) -> Any:
    if _SESSION_CACHE and _SESSION_CACHE[0][0] is model:
        return _SESSION_CACHE[0][1]
    session = inference_session(model.SerializeToString())
    _SESSION_CACHE[:] = [(model, session)]
    return session


def _feeds_with_labels(items: Any, input_name: str) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    for item in items:  # NNCF hands over the raw (image, label) items of the dataset
        image, label = item
        yield _feed(input_name, image), int(label)


def inference_session(content: bytes) -> Any:
    """A CPU ONNX Runtime session set up like the edgecls runtime sets up INT8 models."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if cpu_info().u8s8_overflow_risk:
        options.add_session_config_entry(X64_QUANT_PRECISION, "1")
    return ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------- ONNX Runtime

def quantize_onnxruntime(float_path: Path, quant: QuantizationConfig, work_dir: Path) -> Any:
    """ONNX Runtime ``quantize_static``: QDQ, U8S8, per-channel weights."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out), OrtReader(prepared, quant),
            quant_format=QuantFormat.QDQ, per_channel=quant.per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=_ort_calibrate_method(quant),
            nodes_to_exclude=list(quant.exclude) or None,
            extra_options={"CalibMovingAverage": False, "CalibTensorRangeSymmetric": False},
        )
        return onnx.load(str(out))


def _ort_calibrate_method(quant: QuantizationConfig) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    return methods[method_of(quant)]


def static_batch(graph_input: Any) -> int | None:
    """The fixed batch size of an ONNX graph input, None when it is dynamic."""
    batch_dim = graph_input.type.tensor_type.shape.dim[0]
    static = batch_dim.HasField("dim_value") and batch_dim.dim_value > 0
    return int(batch_dim.dim_value) if static else None


class OrtReader:
    """ONNX Runtime CalibrationDataReader over the prepared calibration images."""

    def __init__(self, model_path: Path, quant: QuantizationConfig) -> None:
        import onnx

        graph_input = onnx.load(str(model_path), load_external_data=False).graph.input[0]
        self.input_name = graph_input.name
        self._batches = quant.calibration_batches(
            static_batch(graph_input) or _CALIBRATION_BATCH.get(method_of(quant), 16))

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch.astype(np.float32)}

    def rewind(self) -> None:  # the API asks for it; one pass is all the calibrators need
        return None

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.get_next, None)
