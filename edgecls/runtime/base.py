"""The one interface every inference backend implements (one file per backend).

A backend loads a model file and runs batches of already-prepared float32 NHWC
images (RGB 0..255 by default, see ``preprocess.prepare``). It converts them to the
model's own input (dtype, quantization, layout) and returns float32 scores.
Backends never import TensorFlow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.formats import Format
from edgecls.runtime.integrity import ModelBytes, read_model
from edgecls.runtime.metadata import ModelMetadata
from edgecls.runtime.tensors import TensorInfo, from_model_output, tensor_dict, to_model_input
from edgecls.runtime.tflite_standard_metadata import StandardMetadata


@dataclass
class BackendOptions:
    """What a target profile or the user may set; ``None`` means "backend decides"."""

    threads: int | None = None
    device: str | None = None  # OpenVINO: CPU | GPU | NPU
    providers: list[str] | None = None  # ONNX Runtime execution providers
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """Runs one model file. Subclasses register themselves in ``BACKENDS``."""

    name: str = ""
    format: Format | None = None  # the file format it runs (edgecls.formats)

    def __init__(self, path: str | Path, options: BackendOptions | None = None,
                 model: ModelBytes | None = None) -> None:
        """Args:
            path: the model file (named in messages).
            options: what the target profile or the user set.
            model: the file's bytes, already read (and verified) by ``load_backend``;
                read here, unverified, when not given.
        """
        self.path = Path(path)
        self.options = options or BackendOptions()
        self.settings: dict[str, Any] = {}  # what was applied, recorded in bench output
        self._model_bytes = model

    def take_model_bytes(self) -> ModelBytes:
        """The model's bytes for loading, released here so a backend keeps only what it needs."""
        model, self._model_bytes = self._model_bytes, None
        return model if model is not None else read_model(self.path)

    @property
    @abstractmethod
    def input_info(self) -> TensorInfo:
        """The model's (first) input as stored in the file."""

    @property
    @abstractmethod
    def output_info(self) -> TensorInfo:
        """The model's (first) output as stored in the file."""

    @abstractmethod
    def read_metadata(self) -> ModelMetadata | None:
        """The embedded edgecls metadata, or None for a foreign model."""

    def describe(self) -> dict[str, Any]:
        """What the file says about itself for ``edgecls inspect``: ``inputs`` and
        ``outputs`` (name, dtype, shape, quantization), ``producer`` and ``entries``
        (the metadata keys it carries). Backends add what their format knows."""
        return {"inputs": [tensor_dict("input", self.input_info)],
                "outputs": [tensor_dict("output", self.output_info)], "producer": {}, "entries": []}

    def read_standard_metadata(self) -> StandardMetadata | None:
        """A foreign model's standard metadata (``StandardMetadata``; TFLite only), or None."""
        return None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Runs a float32 NHWC batch (N, H, W, 3); returns float32 scores (N, classes).

        Quantized inputs and outputs are converted with the model's own scale and
        zero point; NCHW models are transposed here, not by the caller.
        """
        return from_model_output(self.invoke(to_model_input(batch, self.input_info)), self.output_info)

    @abstractmethod
    def invoke(self, native: np.ndarray) -> np.ndarray:
        """Runs a batch already in the model's own dtype and layout; returns the raw output.

        The lean per-frame path of ``Classifier`` uses this to skip float conversions;
        ``run`` is ``invoke`` wrapped in the conversions.
        """

    @staticmethod
    def version() -> str:
        """Version of the underlying inference library."""
        return "unknown"
