"""OpenVINO backend for IR files (``.xml`` beside its ``.bin``); device CPU, GPU or NPU."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.errors import ModelError
from edgecls.formats import OPENVINO
from edgecls.runtime.backends import BACKENDS, not_a_model, resolve_threads
from edgecls.runtime.base import Backend, BackendOptions
from edgecls.runtime.integrity import ModelBytes
from edgecls.runtime.metadata import METADATA_KEY, ModelMetadata, parse_metadata
from edgecls.runtime.tensors import TensorInfo, guess_layout, tensor_dict

# OpenVINO prefixes its messages with where they were raised; the cause comes after.
_LOCATION_LINE = re.compile(r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:)$")
_NODE = re.compile(r"friendly_name '([^']+)'")


def _tensor_info(port: Any, quantization: tuple[float, int] | None = None) -> TensorInfo:
    partial = port.get_partial_shape()
    shape = tuple(d.get_length() if d.is_static else -1 for d in partial)
    dtype = np.dtype(port.get_element_type().to_dtype()).name
    return TensorInfo(shape=shape, dtype=dtype, quantization=quantization, layout=guess_layout(shape))


@BACKENDS.register("openvino")
class OpenVINOBackend(Backend):
    """Runs an OpenVINO IR model compiled for one device (default CPU)."""

    name = "openvino"
    format = OPENVINO

    def __init__(self, path: str | Path, options: BackendOptions | None = None,
                 model: ModelBytes | None = None) -> None:
        super().__init__(path, options, model)
        ov = _import_openvino()
        core = ov.Core()
        device = (self.options.device or "CPU").upper()
        self._check_device(device, core.available_devices)
        for weights in OPENVINO.side_files(self.path):
            if not weights.is_file():
                raise ModelError(f"{self.path}: weights file {weights.name} is missing",
                                 "keep the .bin file beside the .xml")
        files = self.take_model_bytes()
        try:
            model = core.read_model(files.content, files.weights or b"")
            del files  # OpenVINO holds what it needs of the weights
            self._metadata_text = _rt_info_text(model)
            self._rt_keys = sorted(str(k) for k in model.get_rt_info())
            self._runtime_version = _rt_info_text(model, "Runtime_version")
            compiled = core.compile_model(model, device, self._config(device))
        except (RuntimeError, ValueError) as exc:  # ValueError: undecodable rt_info text
            raise not_a_model(self.path, "OpenVINO IR", openvino_cause(exc)) from None
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._output_port = compiled.output(0)
        meta = self.read_metadata()
        self._input_info = _tensor_info(compiled.input(0), meta.input_quantization if meta else None)
        self._output_info = _tensor_info(compiled.output(0), meta.output_quantization if meta else None)
        self.settings["device"] = device

    def _config(self, device: str) -> dict[str, Any]:
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if device == "CPU":
            threads = resolve_threads(self.options)
            config["INFERENCE_NUM_THREADS"] = threads
            self.settings["threads"] = threads
            # On CPUs with BF16 (AVX512_BF16, AMX) OpenVINO runs float models in bfloat16 by
            # default, which changes the scores the float model was validated with.
            config["INFERENCE_PRECISION_HINT"] = "f32"
        config.update(self.options.extra.get("openvino_config", {}))
        self.settings["config"] = {k: str(v) for k, v in config.items()}
        return config

    @staticmethod
    def _check_device(device: str, available: list[str]) -> None:
        base = device.split(".")[0].split(":")[0]
        if base in ("AUTO", "MULTI", "HETERO") or any(d.split(".")[0] == base for d in available):
            return
        raise ModelError(f"OpenVINO device {device} is not available here",
                         f"available devices: {', '.join(available) or 'none'}; try --device CPU")

    @property
    def input_info(self) -> TensorInfo:
        return self._input_info

    @property
    def output_info(self) -> TensorInfo:
        return self._output_info

    def read_metadata(self) -> ModelMetadata | None:
        return parse_metadata(self._metadata_text, self.path) if self._metadata_text else None

    def describe(self) -> dict[str, Any]:
        inputs = [tensor_dict(p.get_any_name(), _tensor_info(p)) for p in self._compiled.inputs]
        outputs = [tensor_dict(p.get_any_name(), _tensor_info(p)) for p in self._compiled.outputs]
        inputs[0]["quantization"] = tensor_dict("", self._input_info)["quantization"]
        outputs[0]["quantization"] = tensor_dict("", self._output_info)["quantization"]
        return {"inputs": inputs, "outputs": outputs, "entries": self._rt_keys,
                "producer": {"openvino_runtime": self._runtime_version}}

    def invoke(self, native: np.ndarray) -> np.ndarray:
        fixed = self._input_info.shape[0]
        if fixed > 0 and native.shape[0] != fixed:
            parts = [self.invoke(native[i : i + fixed]) for i in range(0, native.shape[0], fixed)]
            return np.concatenate(parts)
        try:
            self._request.infer({0: native}, share_inputs=True)
        except RuntimeError as exc:
            raise ModelError(f"{self.path} failed to run: {openvino_cause(exc)}",
                             "the model may be damaged; re-export it") from None
        return self._request.get_tensor(self._output_port).data.copy()

    @staticmethod
    def version() -> str:
        return f"openvino {_import_openvino().__version__}"


def openvino_cause(exc: BaseException) -> str:
    """The line of an OpenVINO error that says what went wrong (not where it was raised)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    causes = [ln for ln in lines if not _LOCATION_LINE.match(ln)]
    if not causes:
        return lines[-1] if lines else type(exc).__name__
    node = _NODE.search(" ".join(causes))
    cause = causes[-1]
    return f"node {node.group(1)}: {cause}" if node and node.group(1) not in cause else cause


def _rt_info_text(model: Any, key: str = METADATA_KEY) -> str | None:
    if not model.has_rt_info([key]):
        return None
    value = model.get_rt_info([key])
    return value.astype(str) if hasattr(value, "astype") else str(value)


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise ModelError(
            "OpenVINO is not installed", "pip install 'edgecls[runtime-openvino]' (openvino)"
        ) from None
    return openvino
