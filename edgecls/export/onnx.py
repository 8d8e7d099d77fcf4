"""ONNX export: SavedModel -> tf2onnx -> (fp16 | dynamic | static QDQ INT8).

INT8 is QDQ with per-channel weights, made by NNCF's ONNX backend by default or by
ONNX Runtime's ``quantize_static`` (``onnx_quant.py``; the manifest records which).
On x86 CPUs without VNNI, ONNX Runtime's U8S8 kernels overflow unless the session option
``session.x64quantprecision=1`` is set; the edgecls ONNX Runtime backend detects such a
CPU (``edgecls.runtime.cpu``) and sets it, so validation sees what devices see.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.atomic import atomic_path
from edgecls.errors import ModelError
from edgecls.export import metadata as md
from edgecls.export import onnx_quant
from edgecls.export.base import EXPORTERS, Exporter, ExportSource, QuantizationConfig, Remedy
from edgecls.export.quiet import logger_level
from edgecls.formats import ONNX
from edgecls.runtime import integrity

OPSET = 17
_SENSITIVE_COUNT = 3
# Remedies after the default (ONNX Runtime MinMax), strongest measured payoff first:
# NNCF accuracy control (what brought OpenVINO to 0.00 pp where ONNX Runtime's best missed,
# issue 12; its models ran 4x slower in ONNX Runtime on MobileNetV3-Large), then
# Percentile; Entropy did worse than Percentile there. Percentile keeps every activation in memory: on Lite0 at 224 px,
# 300 images took over 11.7 GB and were OOM-killed here, so its remedy gets at most
# _PERCENTILE_IMAGES calibration images.
_REMEDY_METHODS = ("nncf_accuracy_control", "percentile", "minmax")
_PERCENTILE_IMAGES = 100


@EXPORTERS.register("onnx")
class OnnxExporter(Exporter):
    """ONNX models for ONNX Runtime; INT8 is static QDQ with per-channel weights."""

    name = "onnx"
    format = ONNX

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
            model = onnx_quant.quantize(float_path, quant, source.work_dir)
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
        used = {onnx_quant.method_of(q) for q in tried}
        out = []
        for method in _REMEDY_METHODS:
            if method in used or (method == "nncf_accuracy_control" and quant.validation is None):
                continue
            changes: dict[str, Any] = {"method": method, "validation": None}
            if method == "nncf_accuracy_control":
                changes["validation"] = quant.validation
            if method == "percentile":
                changes["calibration"] = quant.calibration[:_PERCENTILE_IMAGES]
            out.append(Remedy(f"{_describe(method)} instead of {_describe(onnx_quant.method_of(quant))}",
                              quant.replace(**changes)))
        return out

    def last_resort(self, source: ExportSource, quant: QuantizationConfig) -> Remedy | None:
        if quant.exclude or onnx_quant.method_of(quant) not in onnx_quant.ORT_METHODS:
            return None  # NNCF's own exclusion is accuracy control
        nodes = sensitive_nodes(float_model(source), quant, source.work_dir)
        return Remedy(f"kept the {len(nodes)} layers with the lowest quantization SQNR in "
                      f"float (nodes_to_exclude: {', '.join(nodes)})",
                      quant.replace(exclude=tuple(nodes)))


def _describe(method: str) -> str:
    if method == "nncf":
        return "NNCF quantize"
    if method == "nncf_accuracy_control":
        return "NNCF quantize_with_accuracy_control (sensitive layers back in float)"
    return f"ONNX Runtime quantize_static ({method} ranges)"


def _settings(quant: QuantizationConfig) -> dict[str, Any]:
    if quant.precision != "int8":
        return {}
    return {"onnx": onnx_quant.settings(quant)}


def float_model(source: ExportSource) -> Path:
    """The fp32 ONNX model converted from the SavedModel (cached in ``work_dir``)."""
    path = source.work_dir / ("float_dynamic.onnx" if source.dynamic_batch else "float.onnx")
    if not path.is_file():
        with atomic_path(path) as tmp:
            _convert_saved_model(source.saved_model, tmp, (source.batch_dim(ONNX), *source.input_shape[1:]))
    return path


def _convert_saved_model(saved_model: Path, out: Path, input_shape: tuple[int, ...]) -> None:
    """tf2onnx conversion with the input shape fixed to ``input_shape`` (-1: dynamic)."""
    import onnx
    import tensorflow as tf
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    try:
        with logger_level("tf2onnx", logging.ERROR):  # it warns that it picked the serving tag
            graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
                str(saved_model), None, None, return_initialized_tables=True,
                return_tensors_to_rename=True)
        with tf.device("/cpu:0"), logger_level("tf2onnx", logging.ERROR):
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


def sensitive_nodes(float_path: Path, quant: QuantizationConfig, work_dir: Path,
                    count: int = _SENSITIVE_COUNT, images: int = 32) -> list[str]:
    """Conv/MatMul/Gemm nodes whose quantized input or weight has the lowest SQNR.

    Measured with ONNX Runtime's ``qdq_loss_debug`` on ``images`` calibration images:
    each node's score is the worse of its input activation's QDQ round-trip SQNR and
    its weight's SQNR; the ``count`` worst nodes are the ones to keep in float.
    """
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as debug

    probe = quant.replace(calibration=quant.calibration[:images], exclude=(), method="minmax")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        qdq_path, augmented = Path(tmp) / "qdq.onnx", Path(tmp) / "qdq_aug.onnx"
        onnx.save(onnx_quant.quantize_onnxruntime(float_path, probe, Path(tmp)), str(qdq_path))
        debug.modify_model_output_intermediate_tensors(str(qdq_path), str(augmented))
        activations = debug.collect_activations(str(augmented),
                                                onnx_quant.OrtReader(qdq_path, probe))
        act_sqnr = {name: _sqnr(match["pre_qdq"], match["post_qdq"])
                    for name, match in debug.create_activation_matching(activations).items()}
        with logger_level(None, logging.CRITICAL):  # an ERROR per weight folded away
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
