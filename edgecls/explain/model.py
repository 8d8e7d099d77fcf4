"""The one interface every explanation method sees: a model that prepares and predicts.

``RuntimeModel`` (any ``.tflite``/``.onnx``/``.xml`` through ``edgecls.runtime``) lives
here and imports no TensorFlow; ``gradcam.KerasModel`` wraps a float Keras model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgecls.errors import ConfigError, ModelError
from edgecls.runtime.base import BackendOptions
from edgecls.runtime.classifier import Classifier


class ExplainedModel(ABC):
    """A classifier seen from outside: labels, input size, preparation and prediction."""

    kind: str = ""  # "keras" or the artifact format ("tflite", "onnx", "openvino")
    methods: tuple[str, ...] = ("rise", "occlusion")  # the methods it supports

    def __init__(self, path: Path, labels: list[str], input_size: tuple[int, int]) -> None:
        self.path = path
        self.labels = labels
        self.input_size = input_size

    @property
    def name(self) -> str:
        """Short name for captions: the file name (the run folder for a run's best.keras)."""
        return self.path.parent.name if self.path.name == "best.keras" else self.path.name

    @abstractmethod
    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        """One BGR image as this model's float32 (H, W, 3) input."""

    @abstractmethod
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for a prepared float32 NHWC batch."""

    @property
    def baseline(self) -> np.ndarray:
        """A black pixel in model input space: what masking and occlusion paint with."""
        return self.prepare(np.zeros((*self.input_size, 3), np.uint8))[0, 0]

    def class_index(self, name: str) -> int:
        """The output index of a class name, or a ConfigError listing the known ones."""
        if name in self.labels:
            return self.labels.index(name)
        shown = ", ".join(self.labels[:12]) + (", ..." if len(self.labels) > 12 else "")
        raise ConfigError(f"unknown class {name!r} for {self.name}", f"known classes: {shown}")


class RuntimeModel(ExplainedModel):
    """An exported artifact run through the edgecls runtime (no TensorFlow; runs on a Pi).

    Args:
        path: ``.tflite``, ``.onnx`` or OpenVINO ``.xml``.
        labels: labels file or list for models without embedded labels.
        threads: inference threads (None: the backend's default).
    """

    def __init__(self, path: str | Path, labels: str | Path | Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.classifier = Classifier(path, labels=labels, options=BackendOptions(threads=threads))
        super().__init__(Path(path), self.classifier.labels, self.classifier.input_size)
        self.kind = self.classifier.backend.name
        self._batches = True  # False once the model refused a batch (fixed batch of 1)

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        return self.classifier.prepare(image_bgr)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a batch; one image at a time for models fixed to batch 1."""
        if self._batches and len(batch) > 1:
            try:
                return self.classifier.predict(batch)
            except ModelError:  # e.g. LiteRT's XNNPack cannot reshape some foreign models
                self._batches = False
        return np.concatenate([self.classifier.predict(batch[i:i + 1]) for i in range(len(batch))])
