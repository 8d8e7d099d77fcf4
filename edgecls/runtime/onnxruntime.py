"""ONNX Runtime backend for ``.onnx`` files.

Execution providers come from the options (a target profile or ``--providers``):
CPU by default, CUDA and TensorRT on a Jetson when the installed build has them.
On x86 CPUs whose 8-bit kernels saturate (see ``edgecls.runtime.cpu``), quantized
models get ``session.x64quantprecision=1``; every such setting lands in ``settings``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.errors import ModelError
from edgecls.formats import ONNX
from edgecls.runtime.backends import BACKENDS, not_a_model, resolve_threads
from edgecls.runtime.base import Backend, BackendOptions
from edgecls.runtime.cpu import cpu_info
from edgecls.runtime.integrity import ModelBytes
from edgecls.runtime.metadata import METADATA_KEY, ModelMetadata, parse_metadata
from edgecls.runtime.tensors import TensorInfo, guess_layout, normalize_shape, tensor_dict

log = logging.getLogger(__name__)

_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}
_ORT_DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
    "tensor(int8)": "int8", "tensor(double)": "float64", "tensor(int64)": "int64",
}
# Op types of a quantized graph (QDQ or QOperator format), as they appear in the file.
_QUANTIZED_OPS = (b"QuantizeLinear", b"QLinearConv", b"QLinearMatMul", b"MatMulInteger", b"ConvInteger")
X64_QUANT_PRECISION = "session.x64quantprecision"


def resolve_providers(requested: list[str] | None, available: list[str]) -> tuple[list[str], list[str]]:
    """Requested providers (aliases allowed) that exist here, CPU last; and the missing ones."""
    names = [_PROVIDER_ALIASES.get(p.lower(), p) for p in (requested or ["cpu"])]
    chosen = [n for n in names if n in available]
    missing = [n for n in names if n not in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen, missing


def is_quantized_onnx(content: bytes) -> bool:
    """True when the serialized model holds quantized operators."""
    return any(op in content for op in _QUANTIZED_OPS)


def _tensor_info(node: Any, quantization: tuple[float, int] | None = None) -> TensorInfo:
    shape = normalize_shape(node.shape)
    dtype = _ORT_DTYPES.get(node.type, node.type)
    return TensorInfo(shape=shape, dtype=dtype, quantization=quantization, layout=guess_layout(shape))


_UNSET_VERSIONS = (0, 2**63 - 1)  # protobuf's default, and INT64 max (tf2onnx's default)


def _model_version(version: int) -> int | None:
    """An ONNX ``model_version``, None when unset (0, or INT64 max as tf2onnx writes it)."""
    return None if version in _UNSET_VERSIONS else int(version)


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    """Runs an ONNX model with an ONNX Runtime ``InferenceSession``."""

    name = "onnxruntime"
    format = ONNX

    def __init__(self, path: str | Path, options: BackendOptions | None = None,
                 model: ModelBytes | None = None) -> None:
        super().__init__(path, options, model)
        ort = _import_ort()
        content = self.take_model_bytes().content
        session_options = self._session_options(ort, content)
        providers, missing = resolve_providers(self.options.providers, ort.get_available_providers())
        if missing:
            log.warning("execution providers not available here, skipped: %s", ", ".join(missing))
            self.settings["providers_unavailable"] = missing
        provider_options = self._provider_options(providers)
        try:
            self._session = ort.InferenceSession(content, session_options, providers=providers,
                                                 provider_options=provider_options)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise not_a_model(self.path, "ONNX", exc) from None
        try:
            self._meta_map = dict(self._session.get_modelmeta().custom_metadata_map)
        except UnicodeDecodeError:
            raise ModelError(f"{self.path}: its metadata_props are not UTF-8 text",
                             "the file is damaged; re-export it with `edgecls export`") from None
        self._input_name = self._session.get_inputs()[0].name
        self._output_name = self._session.get_outputs()[0].name
        self._input_info = _tensor_info(self._session.get_inputs()[0], self._quantization("input"))
        self._output_info = _tensor_info(self._session.get_outputs()[0], self._quantization("output"))
        self.settings["providers"] = self._session.get_providers()

    def _session_options(self, ort: Any, content: bytes) -> Any:
        session_options = ort.SessionOptions()
        threads = resolve_threads(self.options)
        session_options.intra_op_num_threads = threads
        session_options.inter_op_num_threads = 1
        self.settings["threads"] = threads
        self.settings["cpu"] = cpu_info().summary()
        if self._wants_x64_quant_precision(content):
            session_options.add_session_config_entry(X64_QUANT_PRECISION, "1")
            self.settings[X64_QUANT_PRECISION] = "1"
            self.settings["x64quantprecision_reason"] = (
                f"quantized model on {cpu_info().summary()}: u8s8 kernels saturate without VNNI"
            )
        return session_options

    def _provider_options(self, providers: list[str]) -> list[dict[str, Any]]:
        """Per-provider options from ``options.extra["provider_options"]`` (aliases allowed)."""
        given = {_PROVIDER_ALIASES.get(k.lower(), k): v
                 for k, v in self.options.extra.get("provider_options", {}).items()}
        return [{k: str(v) for k, v in (given.get(p) or {}).items()} for p in providers]

    def _wants_x64_quant_precision(self, content: bytes) -> bool:
        forced = self.options.extra.get("x64quantprecision")
        if forced is not None:
            return bool(forced)
        return cpu_info().u8s8_overflow_risk and is_quantized_onnx(content)

    def _quantization(self, which: str) -> tuple[float, int] | None:
        meta = self.read_metadata()
        if meta is None:
            return None
        return meta.input_quantization if which == "input" else meta.output_quantization

    @property
    def input_info(self) -> TensorInfo:
        return self._input_info

    @property
    def output_info(self) -> TensorInfo:
        return self._output_info

    def read_metadata(self) -> ModelMetadata | None:
        text = self._meta_map.get(METADATA_KEY)
        return parse_metadata(text, self.path) if text else None

    def describe(self) -> dict[str, Any]:
        meta = self._session.get_modelmeta()
        inputs = [tensor_dict(n.name, _tensor_info(n)) for n in self._session.get_inputs()]
        outputs = [tensor_dict(n.name, _tensor_info(n)) for n in self._session.get_outputs()]
        inputs[0]["quantization"] = tensor_dict("", self._input_info)["quantization"]
        outputs[0]["quantization"] = tensor_dict("", self._output_info)["quantization"]
        producer = {"producer_name": meta.producer_name or None, "graph_name": meta.graph_name or None,
                    "domain": meta.domain or None, "model_version": _model_version(meta.version)}
        return {"inputs": inputs, "outputs": outputs, "producer": producer,
                "entries": sorted(self._meta_map)}

    def invoke(self, native: np.ndarray) -> np.ndarray:
        fixed = self._input_info.shape[0]
        if fixed > 0 and native.shape[0] != fixed:
            parts = [self.invoke(native[i : i + fixed]) for i in range(0, native.shape[0], fixed)]
            return np.concatenate(parts)
        try:
            return self._session.run([self._output_name], {self._input_name: native})[0]
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{self.path} failed to run: {detail}",
                             "the model may be damaged; re-export it") from None

    @staticmethod
    def version() -> str:
        return f"onnxruntime {_import_ort().__version__}"


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(
            "ONNX Runtime is not installed", "pip install 'edgecls[runtime-onnx]' (onnxruntime)"
        ) from None
    onnxruntime.set_default_logger_severity(3)
    return onnxruntime
