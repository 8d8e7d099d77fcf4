"""LiteRT backend for ``.tflite`` files: ``ai_edge_litert``, else ``tflite_runtime``,
else ``tf.lite`` (only when TensorFlow happens to be installed; never required)."""

from __future__ import annotations

import contextlib
import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.errors import ModelError
from edgecls.formats import TFLITE
from edgecls.runtime.backends import BACKENDS, not_a_model, resolve_threads
from edgecls.runtime.base import Backend, BackendOptions
from edgecls.runtime.integrity import ModelBytes
from edgecls.runtime.metadata import ModelMetadata
from edgecls.runtime.native_stderr import native_stderr_filtered
from edgecls.runtime.tensors import TensorInfo, guess_layout, normalize_shape, tensor_dict
from edgecls.runtime.tflite_metadata import (
    metadata_buffers,
    read_standard_metadata,
    read_tflite_metadata,
)
from edgecls.runtime.tflite_standard_metadata import StandardMetadata

_INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow")
_DELEGATE_NOTICE = re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.\s*$")


def _interpreter_module() -> Any:
    """The first interpreter module that imports; ``tf.lite`` only as a last resort."""
    for name in _INTERPRETER_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.lite if name == "tensorflow" else module
    raise ModelError(
        "no TFLite interpreter is installed",
        "pip install 'edgecls[runtime-tflite]' (ai-edge-litert)",
    )


def _without_delegate_notice() -> contextlib.AbstractContextManager[None]:
    """Drops LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." line, which
    its C++ logger writes to stderr on every load with no switch to turn it off from
    Python. Everything else written to stderr meanwhile is passed on unchanged."""
    return native_stderr_filtered(lambda line: bool(_DELEGATE_NOTICE.match(line)))


def _tensor_info(detail: dict[str, Any]) -> TensorInfo:
    shape = normalize_shape(detail.get("shape_signature", detail["shape"]))
    dtype = np.dtype(detail["dtype"]).name
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quantization = (float(scale), int(zero_point)) if scale else None
    return TensorInfo(shape=shape, dtype=dtype, quantization=quantization, layout=guess_layout(shape))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _detail_dict(detail: dict[str, Any]) -> dict[str, Any]:
    return tensor_dict(detail["name"], _tensor_info(detail))


@BACKENDS.register("litert")
class LiteRTBackend(Backend):
    """Runs a TFLite flatbuffer with the LiteRT interpreter (XNNPACK on CPU)."""

    name = "litert"
    format = TFLITE

    def __init__(self, path: str | Path, options: BackendOptions | None = None,
                 model: ModelBytes | None = None) -> None:
        super().__init__(path, options, model)
        self._content = self.take_model_bytes().content  # the interpreter runs from these bytes
        if self._content[4:8] != b"TFL3":
            raise not_a_model(self.path, "TFLite", "no TFL3 flatbuffer identifier")
        module = _interpreter_module()
        threads = resolve_threads(self.options)
        try:
            self._interpreter = module.Interpreter(model_content=self._content, num_threads=threads)
            with _without_delegate_notice():
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise not_a_model(self.path, "TFLite", exc) from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._input_info = _tensor_info(self._input)
        self._output_info = _tensor_info(self._output)
        self._batch = int(self._input["shape"][0])
        self.settings.update(threads=threads, interpreter=module.__name__)

    @property
    def input_info(self) -> TensorInfo:
        return self._input_info

    @property
    def output_info(self) -> TensorInfo:
        return self._output_info

    def read_metadata(self) -> ModelMetadata | None:
        return read_tflite_metadata(self._content, self.path)

    def describe(self) -> dict[str, Any]:
        entries = metadata_buffers(self._content)
        producer = {"min_runtime_version": entries.get("min_runtime_version", b"").rstrip(b"\0").decode(
            "utf-8", "replace") or None}
        return {"inputs": [_detail_dict(d) for d in self._interpreter.get_input_details()],
                "outputs": [_detail_dict(d) for d in self._interpreter.get_output_details()],
                "producer": producer, "entries": sorted(entries)}

    def read_standard_metadata(self) -> StandardMetadata | None:
        return read_standard_metadata(self._content)

    def invoke(self, native: np.ndarray) -> np.ndarray:
        if native.shape[0] != self._batch:
            self._resize_batch(native.shape[0])
        try:
            self._interpreter.set_tensor(self._input["index"], native)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"])
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path} failed to run: {_first_line(exc)}",
                             "the model may be damaged; re-export it") from None

    def _resize_batch(self, batch: int) -> None:
        try:
            self._allocate_batch(batch)
        except (ValueError, RuntimeError) as exc:
            self._allocate_batch(self._batch)  # the interpreter stays usable at its old size
            raise ModelError(f"{self.path} cannot run a batch of {batch}: {exc}") from None
        self._batch = batch

    def _allocate_batch(self, batch: int) -> None:
        shape = list(self._input["shape"])
        shape[0] = batch
        self._interpreter.resize_tensor_input(self._input["index"], shape, strict=False)
        with _without_delegate_notice():
            self._interpreter.allocate_tensors()

    @staticmethod
    def version() -> str:
        module = _interpreter_module()
        package = module.__name__.split(".")[0]
        try:
            from importlib.metadata import version

            return f"{package} {version(package.replace('_', '-'))}"
        except Exception:  # noqa: BLE001 - version lookup is informational only
            return package
