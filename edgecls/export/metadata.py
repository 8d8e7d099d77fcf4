"""Writes ``ModelMetadata`` into each artifact format (the runtime reads it back).

TFLite uses the runtime's own flatbuffer writer (``edgecls.runtime.tflite_metadata``)
so that reader and writer cannot drift apart (it also writes the standard TFLite
Metadata that MediaPipe Tasks and the Android Task Library read); ONNX stores the JSON in
``metadata_props["edgecls"]``, OpenVINO in ``rt_info["edgecls"]``. Every artifact's
metadata holds the digest placeholders of ``edgecls.runtime.integrity``; each exporter
stamps them as the last step of writing its file (``integrity.stamp_bytes``/``stamp_file``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import edgecls
from edgecls.runtime.integrity import DIGEST_PLACEHOLDER
from edgecls.runtime.metadata import METADATA_KEY, ModelMetadata, Preprocessing
from edgecls.runtime.tflite_metadata import embed_tflite_metadata


def base_metadata(labels: list[str], input_size: tuple[int, int], model_name: str | None,
                  extra: dict[str, Any] | None = None) -> ModelMetadata:
    """The metadata shared by every artifact of one model (precision still unset)."""
    return ModelMetadata(
        labels=list(labels),
        input_size=(int(input_size[0]), int(input_size[1])),
        layout="NHWC",
        preprocessing=Preprocessing(),
        model_name=model_name,
        producer_version=edgecls.__version__,
        extra=dict(extra or {}),
        digest=DIGEST_PLACEHOLDER,
    )


def for_artifact(meta: ModelMetadata, **changes: Any) -> ModelMetadata:
    """A copy of ``meta`` with artifact-specific fields (precision, dtype, quantization)."""
    extra = {**meta.extra, **changes.pop("extra", {})}
    return dataclasses.replace(meta, extra=extra, **changes)


def embed_tflite(tflite_bytes: bytes, meta: ModelMetadata) -> bytes:
    """The final TFLite bytes: ``meta`` in the "edgecls" metadata buffer, standard
    TFLite Metadata in "TFLITE_METADATA" and the label file in an appended zip."""
    return embed_tflite_metadata(tflite_bytes, meta)


def embed_onnx(model: Any, meta: ModelMetadata) -> None:
    """Sets ``metadata_props["edgecls"]`` of an ``onnx.ModelProto`` in place.

    The digest field also goes into ``doc_string``, which is serialized before the graph
    while ``metadata_props`` come last: a copy truncated just before its metadata would
    otherwise pass for a foreign model without a digest.
    """
    if meta.digest and meta.digest not in model.doc_string:
        model.doc_string = "\n".join(filter(None, [model.doc_string, meta.digest]))
    props = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = meta.to_json()


def embed_openvino(model: Any, meta: ModelMetadata) -> None:
    """Sets ``rt_info["edgecls"]`` of an ``openvino.Model`` in place."""
    model.set_rt_info(meta.to_json(), [METADATA_KEY])
