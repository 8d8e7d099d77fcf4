"""What a model file carries, for ``edgecls inspect``: tensors, labels, preprocessing,
the metadata standards present, producer and versions. TensorFlow-free, so it runs
on a device too; the result is JSON-friendly with a ``schema_version``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from edgecls.errors import ModelError
from edgecls.formats import artifact_size, format_for_path
from edgecls.runtime.backends import load_backend
from edgecls.runtime.classifier import Classifier
from edgecls.runtime.metadata import METADATA_KEY, ModelMetadata
from edgecls.runtime.tflite_standard_metadata import STANDARD_KEY, StandardMetadata

DESCRIBE_SCHEMA_VERSION = 2  # 2: "shape" is what the runtime runs, "shape_signature" the model's


def describe_model(path: str | Path) -> dict[str, Any]:
    """A JSON-friendly description of the model file at ``path``.

    Raises:
        ModelError: the file is missing, of an unknown format, or not a model.
    """
    path = Path(path)
    backend = load_backend(path)
    fmt = format_for_path(path)
    info = backend.describe()
    edgecls_meta = backend.read_metadata()
    standard = backend.read_standard_metadata()
    return {
        "schema_version": DESCRIBE_SCHEMA_VERSION,
        "path": str(path),
        "format": fmt.name if fmt else path.suffix.lstrip("."),
        "size_bytes": artifact_size(path),
        "inputs": _as_run(info["inputs"]),
        "outputs": _as_run(info["outputs"]),
        "metadata": {"edgecls": edgecls_meta is not None, "tflite_metadata": standard is not None,
                     "entries": info["entries"]},
        "producer": _producer(edgecls_meta, standard, info["producer"], backend.version()),
        "edgecls": _edgecls_summary(edgecls_meta),
        "tflite_metadata": _standard_summary(standard),
        **_runtime_view(path),
    }


def _as_run(tensors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each tensor's ``shape`` as the runtime runs it (a free batch, -1, is 1: one image at
    a time, in every format) beside the model's own ``shape_signature``; ``batch`` says
    whether that batch is ``static`` or ``resizable``."""
    out = []
    for tensor in tensors:
        signature = list(tensor["shape"])
        shape = [1 if axis == 0 and dim < 0 else dim for axis, dim in enumerate(signature)]
        batch = "resizable" if signature and signature[0] < 0 else "static"
        out.append({**tensor, "shape": shape, "shape_signature": signature, "batch": batch})
    return out


def _producer(meta: ModelMetadata | None, standard: StandardMetadata | None, native: dict[str, Any],
              runtime: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": None, "version": None, **native, "inspected_with": runtime}
    if meta is not None:
        out.update(name=meta.producer, version=meta.producer_version)
    elif standard is not None:
        out.update(name=standard.author or standard.name, version=standard.version)
    return out


def _edgecls_summary(meta: ModelMetadata | None) -> dict[str, Any] | None:
    if meta is None:
        return None
    fields = dataclasses.asdict(meta)
    fields.pop("labels")
    return fields


def _standard_summary(standard: StandardMetadata | None) -> dict[str, Any] | None:
    if standard is None:
        return None
    fields = dataclasses.asdict(standard)
    fields.pop("labels")
    return fields


def _runtime_view(path: Path) -> dict[str, Any]:
    """Labels and preprocessing as ``edgecls run`` resolves them (None for a model it
    cannot run as an image classifier, with the reason)."""
    runtime_log = logging.getLogger("edgecls.runtime.classifier")
    level = runtime_log.level
    runtime_log.setLevel(logging.ERROR)  # "no embedded labels" is reported below instead
    try:
        classifier = Classifier(path)
    except ModelError as exc:
        return {"labels": None, "labels_source": None, "preprocessing": None, "runnable": str(exc)}
    finally:
        runtime_log.setLevel(level)
    meta = classifier.metadata
    if not classifier.is_foreign:
        source = METADATA_KEY
    elif meta.labels:
        source = STANDARD_KEY
    else:
        source = None
    preprocessing = {"input_size": list(classifier.input_size), "layout": classifier.backend.input_info.layout,
                     **dataclasses.asdict(meta.preprocessing)}
    return {"labels": classifier.labels if source else None, "labels_source": source,
            "preprocessing": preprocessing, "runnable": True}
