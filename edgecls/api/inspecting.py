"""``inspect_model``: what a model file carries (``edgecls inspect``). TensorFlow-free,
like the runtime it reads the file with, so it works on a device too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.api import html
from edgecls.runtime.describe import describe_model

SHOWN_LABELS = 50  # inline; all of them are in .labels


@dataclass
class ModelDescription:
    """The description of one model file; ``to_dict()`` is what ``edgecls inspect --json``
    prints (with ``schema_version``)."""

    description: dict[str, Any]

    @property
    def path(self) -> Path:
        return Path(self.description["path"])

    @property
    def format(self) -> str:
        """``tflite``, ``onnx`` or ``openvino``."""
        return str(self.description["format"])

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """Tensors: name, dtype, shape (what the runtime runs), quantization."""
        return list(self.description["inputs"])

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.description["outputs"])

    @property
    def labels(self) -> list[str] | None:
        """The embedded class names (None: the model carries none)."""
        return self.description.get("labels")

    @property
    def preprocessing(self) -> dict[str, Any] | None:
        """How the runtime feeds an image (None: not runnable as an image classifier)."""
        return self.description.get("preprocessing")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.description)

    def _repr_html_(self) -> str:
        d = self.description
        summary = [["format", f"{d['format']} ({d['size_bytes'] / 1024:.1f} KB)"],
                   ["producer", " ".join(str(v) for v in (d["producer"].get("name"), d["producer"].get("version"))
                                         if v) or "unknown"],
                   ["metadata", metadata_standards(d)]]
        tensors = [[kind[:-1], t["name"], t["dtype"], str(t["shape"]), _quantization(t)]
                   for kind in ("inputs", "outputs") for t in d[kind]]
        labels = self.labels or []
        shown = ", ".join(labels[:SHOWN_LABELS]) + (", ..." if len(labels) > SHOWN_LABELS else "")
        label_note = (f"labels ({len(labels)}, from {d['labels_source']}): {shown}" if labels
                      else "labels: none embedded (pass labels= to Classifier)")
        pre = self.preprocessing
        pre_note = (f"preprocessing: {pre['color']} {pre['input_size'][0]}x{pre['input_size'][1]} {pre['layout']}, "
                    f"input = pixel x {pre['scale']:g} {pre['offset']:+g}" if pre
                    else f"not runnable as an image classifier: {d.get('runnable')}")
        return (html.STYLE + html.table(["", ""], summary, caption=str(d["path"]))
                + html.table(["", "name", "dtype", "shape", "quantization (scale, zero point)"], tensors)
                + html.note(pre_note) + html.note(label_note))


def metadata_standards(d: dict[str, Any]) -> str:
    """Which metadata standards a description shows present, and its other entries."""
    meta = d["metadata"]
    present = [name for name, flag in (("edgecls", meta["edgecls"]),
                                       ("TFLite Metadata", meta["tflite_metadata"])) if flag]
    extra = [e for e in meta["entries"] if e not in ("edgecls", "TFLITE_METADATA")]
    text = ", ".join(present) or "none"
    return f"{text}; other entries: {', '.join(extra)}" if extra else text


def _quantization(tensor: dict[str, Any]) -> str:
    quant = tensor["quantization"]
    return f"{quant['scale']:.6g}, {quant['zero_point']}" if quant else "-"


def inspect_model(model: str | Path) -> ModelDescription:
    """Shows what a model file carries (``edgecls inspect``): inputs and outputs (dtype,
    shape, quantization), labels, preprocessing, the metadata standards present (edgecls,
    standard TFLite Metadata), producer and versions. Works on models from anywhere.

    Args:
        model: a ``.tflite``, ``.onnx`` or OpenVINO ``.xml`` file.

    Raises:
        ModelError: the file is missing, of an unknown format, or not a model.
    """
    return ModelDescription(describe_model(model))
