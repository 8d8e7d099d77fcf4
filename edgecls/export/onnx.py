"""ONNX export: SavedModel -> tf2onnx -> (fp16 | dynamic | static QDQ INT8 via ONNX Runtime).

INT8 uses U8S8 QDQ with per-channel weights: ONNX Runtime fuses every convolution
with uint8 activations (with int8 activations about a third of them stay in float).
On x86 CPUs without VNNI, U8S8 kernels overflow unless the session option
``session.x64quantprecision=1`` is set; the edgecls ONNX Runtime backend detects such a
CPU (``edgecls.runtime.cpu``) and sets it, so validation sees what devices see.
"""

from __future__ import annotations

import logging
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgecls.atomic import atomic_path
from edgecls.errors import ConfigError, ModelError
from edgecls.export import metadata as md
from edgecls.export.base import EXPORTERS, Exporter, ExportSource, QuantizationConfig, Remedy
from edgecls.runtime import integrity

OPSET = 17
# MinMax reduces each batch as it goes; Entropy/Percentile keep every activation in
# memory and need equal batch shapes, so they get single images.
_CALIBRATION_BATCH = {"minmax": 16, "entropy": 1, "percentile": 1}
_METHODS = ("minmax", "entropy", "percentile")
_SENSITIVE_COUNT = 3


@EXPORTERS.register("onnx")
class OnnxExporter(Exporter):
    """ONNX models for ONNX Runtime; INT8 is static QDQ, per-channel, U8S8."""

    name = "onnx"
    suffix = ".onnx"
    precisions = ("fp32", "fp16", "dynamic", "int8")
    calibration_methods = _METHODS

    def export(self, source: ExportSource, quant: QuantizationConfig, out: Path) -> Path:
        import onnx

        self.check_precision(quant.precision)
        float_path = float_model(source)
        if quant.precision == "fp32":
            model = onnx.load(str(float_path))
        elif quant.precision == "fp16":
            model = _to_fp16(onnx.load(str(float_path)))
        elif quant.precision == "dynamic":
            model = _quantize_dynamic(float_path, source.work_dir)
        else:
            model = _quantize_static(float_path, quant, source.work_dir)
        meta = md.for_artifact(source.metadata, precision=quant.precision,
                               input_dtype="float32",
                               extra=_settings(quant))
        md.embed_onnx(model, meta)
        with atomic_path(out) as tmp:
            onnx.save(model, str(tmp))
            integrity.stamp_file(tmp)  # last step: the digest of the final bytes
        return out

    def settings(self, quant: QuantizationConfig) -> dict[str, Any]:
        return {**quant.settings(), **_settings(quant).get("onnx", {})}

    def remedies(self, source: ExportSource, quant: QuantizationConfig,
                 tried: list[QuantizationConfig]) -> list[Remedy]:
        used = {_method(q) for q in tried}
        out = [Remedy(f"calibration method {m} instead of {_method(quant)}", quant.replace(method=m))
               for m in _METHODS if m not in used]
        if not quant.exclude:
            nodes = sensitive_nodes(float_model(source), quant, source.work_dir)
            out.append(Remedy(f"kept the {len(nodes)} layers with the lowest quantization SQNR in "
                              f"float (nodes_to_exclude: {', '.join(nodes)})",
                              quant.replace(exclude=tuple(nodes))))
        return out


def _settings(quant: QuantizationConfig) -> dict[str, Any]:
    if quant.precision != "int8":
        return {}
    return {"onnx": {"method": _method(quant), "activations": "uint8", "weights": "int8",
                     "format": "QDQ", "per_channel": quant.per_channel}}


def float_model(source: ExportSource) -> Path:
    """The fp32 ONNX model converted from the SavedModel (cached in ``work_dir``)."""
    path = source.work_dir / ("float_dynamic.onnx" if source.dynamic_batch else "float.onnx")
    if not path.is_file():
        with atomic_path(path) as tmp:
            _convert_saved_model(source.saved_model, tmp, (source.batch_dim, *source.input_shape[1:]))
    return path


def _convert_saved_model(saved_model: Path, out: Path, input_shape: tuple[int, ...]) -> None:
    """tf2onnx conversion with the input shape fixed to ``input_shape`` (-1: dynamic)."""
    import onnx
    import tensorflow as tf
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    try:
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(saved_model), None, None, return_initialized_tables=True,
            return_tensors_to_rename=True)
        with tf.device("/cpu:0"):
            model, _ = _convert_common(graph_def, name=str(saved_model), opset=OPSET,
                                       input_names=inputs, output_names=outputs,
                                       shape_override=_shape_override(inputs[0], input_shape),
                                       initialized_tables=tables, tensors_to_rename=renames)
    except Exception as exc:  # tf2onnx raises many types; all mean "cannot convert"
        raise conversion_error(exc) from None
    _check_ops(model)
    onnx.save(model, str(out))


def _shape_override(name: str, input_shape: tuple[int, ...]) -> dict[str, list[int]] | None:
    """Fixes the input shape when it is static; a -1 (dynamic) dimension keeps the signature's."""
    return {name: list(input_shape)} if min(input_shape) > 0 else None


def conversion_error(exc: Exception) -> ModelError:
    """A user error for a failed tf2onnx conversion, naming the op when known."""
    text = str(exc).strip() or type(exc).__name__
    match = re.search(r"op(?:erator)?\s*\[?['\"]?([A-Za-z0-9_]+)", text)
    where = f" on op {match.group(1)}" if match else ""
    return ModelError(f"ONNX conversion failed{where}: {text.splitlines()[0][:300]}",
                      "replace that layer with a standard one, or export to tflite/openvino")


def _check_ops(model: Any) -> None:
    import onnx

    domains = {""} | {op.domain for op in model.opset_import}
    for node in model.graph.node:
        known = any(onnx.defs.has(node.op_type, d) for d in domains if d in ("", "ai.onnx"))
        if node.domain in ("", "ai.onnx") and not known:
            raise ModelError(f"ONNX conversion failed on op {node.op_type} (node {node.name}): "
                             f"tf2onnx has no ONNX equivalent",
                             "replace that layer with a standard one, or export to tflite/openvino")


def _to_fp16(model: Any) -> Any:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)


def _quantize_dynamic(float_path: Path, work_dir: Path) -> Any:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        out = Path(tmp) / "dynamic.onnx"
        quantize_dynamic(str(float_path), str(out), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
        return onnx.load(str(out))


def _quantize_static(float_path: Path, quant: QuantizationConfig, work_dir: Path) -> Any:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out), _Reader(prepared, quant),
            quant_format=QuantFormat.QDQ, per_channel=quant.per_channel,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=_calibrate_method(quant),
            nodes_to_exclude=list(quant.exclude) or None,
            extra_options={"CalibMovingAverage": False, "CalibTensorRangeSymmetric": False},
        )
        return onnx.load(str(out))


def _method(quant: QuantizationConfig) -> str:
    return "minmax" if quant.method == "default" else quant.method


def _calibrate_method(quant: QuantizationConfig) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    name = _method(quant)
    if name not in methods:
        raise ConfigError(f"unknown ONNX calibration method {quant.method!r}",
                          f"choose one of: {', '.join(methods)}")
    return methods[name]


class _Reader:
    """ONNX Runtime CalibrationDataReader over the prepared calibration images."""

    def __init__(self, model_path: Path, quant: QuantizationConfig) -> None:
        import onnx

        graph_input = onnx.load(str(model_path), load_external_data=False).graph.input[0]
        self.input_name = graph_input.name
        batch_dim = graph_input.type.tensor_type.shape.dim[0]
        static = batch_dim.HasField("dim_value") and batch_dim.dim_value > 0
        self._batches = quant.calibration_batches(
            batch_dim.dim_value if static else _CALIBRATION_BATCH[_method(quant)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch.astype(np.float32)}

    def rewind(self) -> None:  # the API asks for it; one pass is all the calibrators need
        return None

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.get_next, None)


@contextmanager
def _root_logger_silenced() -> Iterator[None]:
    """ONNX Runtime's quantization debug helpers report expected misses through
    ``logging.error`` on the root logger; hide them for the duration of one call."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


def sensitive_nodes(float_path: Path, quant: QuantizationConfig, work_dir: Path,
                    count: int = _SENSITIVE_COUNT, images: int = 32) -> list[str]:
    """Conv/MatMul/Gemm nodes whose quantized input or weight has the lowest SQNR.

    Measured with ONNX Runtime's ``qdq_loss_debug`` on ``images`` calibration images:
    each node's score is the worse of its input activation's QDQ round-trip SQNR and
    its weight's SQNR; the ``count`` worst nodes are the ones to keep in float.
    """
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as debug

    probe = quant.replace(calibration=quant.calibration[:images], exclude=())
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        qdq_path, augmented = Path(tmp) / "qdq.onnx", Path(tmp) / "qdq_aug.onnx"
        onnx.save(_quantize_static(float_path, probe, Path(tmp)), str(qdq_path))
        debug.modify_model_output_intermediate_tensors(str(qdq_path), str(augmented))
        activations = debug.collect_activations(str(augmented), _Reader(qdq_path, probe))
        act_sqnr = {name: _sqnr(match["pre_qdq"], match["post_qdq"])
                    for name, match in debug.create_activation_matching(activations).items()}
        with _root_logger_silenced():  # it logs an ERROR for every weight folded away
            weights = debug.create_weight_matching(str(float_path), str(qdq_path))
        weight_sqnr = {name: _sqnr(match["float"], match["dequantized"])
                       for name, match in weights.items()}
    scored = []
    for node in onnx.load(str(float_path)).graph.node:
        if node.op_type in ("Conv", "MatMul", "Gemm") and len(node.input) > 1:
            score = min(act_sqnr.get(node.input[0], np.inf), weight_sqnr.get(node.input[1], np.inf))
            scored.append((score, node.name))
    scored.sort()
    return [name for _, name in scored[:count]]


def _sqnr(signal: Any, noisy: Any) -> float:
    """Signal-to-quantization-noise ratio in dB of two (lists of) arrays."""
    a = np.concatenate([np.ravel(x) for x in (signal if isinstance(signal, list) else [signal])])
    b = np.concatenate([np.ravel(x) for x in (noisy if isinstance(noisy, list) else [noisy])])
    eps = np.finfo(np.float32).eps
    return float(20 * np.log10(max(np.linalg.norm(a), eps) / max(np.linalg.norm(a - b), eps)))
