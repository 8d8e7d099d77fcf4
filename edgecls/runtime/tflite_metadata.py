"""Metadata inside a TFLite model, without TensorFlow: our ``edgecls`` entry and the
standard ``TFLITE_METADATA`` one.

The edgecls entry is a ``Model.metadata`` entry named ``METADATA_KEY`` ("edgecls")
whose buffer holds the UTF-8 JSON of ``ModelMetadata.to_json()``. The standard entry
(``tflite_standard_metadata``) is what MediaPipe Tasks, the Android Task Library and
ML Kit read; its label file travels in a zip appended to the flatbuffer. Other
entries (such as ``min_runtime_version``) are kept as they are. ``write_tflite`` is
the one function that produces the final bytes of a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecls.errors import ModelError
from edgecls.runtime import tflite_standard_metadata as standard
from edgecls.runtime.metadata import METADATA_KEY, ModelMetadata, parse_metadata

_FILE_IDENTIFIER = b"TFL3"
# A flatbuffer addresses itself with signed 32-bit offsets: 2 GiB is its hard limit.
FLATBUFFER_LIMIT = 2**31 - 1
_TENSOR_TYPES = {0: "float32", 1: "float16", 3: "uint8", 9: "int8"}


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise ModelError(
            "reading TFLite metadata needs the ai-edge-litert package",
            "pip install 'edgecls[runtime-tflite]'",
        ) from None
    return schema_py_generated


def _load_bytes(path_or_bytes: str | Path | bytes) -> bytes:
    data = bytes(path_or_bytes) if isinstance(path_or_bytes, (bytes, bytearray, memoryview)) \
        else Path(path_or_bytes).read_bytes()
    if data[4:8] != _FILE_IDENTIFIER:
        raise ModelError("not a TFLite flatbuffer (no TFL3 identifier)",
                         "pass a .tflite file written by a TFLite converter")
    return data


def metadata_buffers(path_or_bytes: str | Path | bytes) -> dict[str, bytes]:
    """Every ``Model.metadata`` entry of a TFLite model: name -> buffer bytes."""
    data = _load_bytes(path_or_bytes)
    model = _schema().Model.GetRootAs(data, 0)
    out = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        name = (entry.Name() or b"").decode("utf-8", "replace")
        out[name] = _buffer_bytes(model.Buffers(entry.Buffer()), data)
    return out


def read_tflite_metadata(path_or_bytes: str | Path | bytes,
                         source: str | Path = "TFLite model") -> ModelMetadata | None:
    """The embedded edgecls metadata of a TFLite model, or None for a foreign model.

    Raises:
        ModelError: the flatbuffer's metadata table is damaged or the entry is invalid.
    """
    if not isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        source = path_or_bytes
    data = _load_bytes(path_or_bytes)
    try:
        payload = metadata_buffers(data).get(METADATA_KEY)
    except Exception as exc:  # noqa: BLE001 - a damaged flatbuffer raises anything
        raise ModelError(f"{source}: the metadata table of the flatbuffer is damaged "
                         f"({type(exc).__name__})", "re-export the model with `edgecls export`"
                         ) from None
    return None if payload is None else parse_metadata(payload, source)


def read_standard_metadata(path_or_bytes: str | Path | bytes) -> standard.StandardMetadata | None:
    """The standard TFLite Metadata of a model (labels from its appended zip), or None."""
    data = _load_bytes(path_or_bytes)
    buffer = metadata_buffers(data).get(standard.STANDARD_KEY)
    if buffer is None:
        return None
    return standard.parse(buffer, standard.read_associated_files(data))


def _buffer_bytes(buffer: Any, data: bytes) -> bytes:
    """A buffer's bytes, inline or (for models over 2 GB) stored at an offset in the file."""
    if buffer.DataLength():
        return buffer.DataAsNumpy().tobytes()
    offset, size = buffer.Offset(), buffer.Size()
    return data[offset : offset + size] if offset > 1 and size else b""


def embed_tflite_metadata(tflite_bytes: bytes, meta: ModelMetadata) -> bytes:
    """The model with ``meta`` embedded twice: as the edgecls entry and as standard TFLite
    Metadata with its label file (both replacing earlier ones, an old zip included)."""
    data = _load_bytes(tflite_bytes)
    float_input, classes = _io_summary(data)
    standard.check_labels(meta.labels)
    if classes and len(meta.labels) != classes:
        raise ModelError(f"{len(meta.labels)} labels for a model with {classes} outputs",
                         "export from the run the model was trained in")
    entries = {METADATA_KEY: meta.to_json().encode("utf-8"),
               standard.STANDARD_KEY: standard.build(classifier_info(meta, float_input))}
    return write_tflite(data, entries, {standard.LABELS_FILE: standard.labels_file_bytes(meta.labels)})


def classifier_info(meta: ModelMetadata, float_input: bool) -> standard.ImageClassifierInfo:
    """What standard metadata says about a model described by ``meta``.

    edgecls models normalize inside, so for a float input the truthful normalization
    is mean 0, std 1 on 0..255 pixels; ``Preprocessing`` scale/offset map onto it.
    """
    pre = meta.preprocessing
    scale = pre.scale or 1.0
    name = meta.model_name or "image classifier"
    precision = f", {meta.precision}" if meta.precision else ""
    return standard.ImageClassifierInfo(
        name=name,
        description=f"Classifies an image into {len(meta.labels)} classes ({name}{precision}); "
                    f"exported by {meta.producer} {meta.producer_version or ''}".rstrip() + ".",
        labels=meta.labels, input_size=tuple(meta.input_size), float_input=float_input,
        mean=-pre.offset / scale, std=1.0 / scale,
        color_space="RGB" if pre.color.upper() == "RGB" else "UNKNOWN",
        outputs_probabilities=meta.outputs_probabilities)


def _io_summary(data: bytes) -> tuple[bool, int | None]:
    """(the first input is float32, classes of the first output) of a TFLite model."""
    model = _schema().Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    tensor_in = graph.Tensors(graph.Inputs(0))
    tensor_out = graph.Tensors(graph.Outputs(0))
    shape = [int(d) for d in tensor_out.ShapeAsNumpy()] if tensor_out.ShapeLength() else []
    classes = int(np.prod([d for d in shape[1:] if d > 0])) if len(shape) > 1 else None
    return _TENSOR_TYPES.get(tensor_in.Type()) == "float32", classes


def write_tflite(tflite_bytes: bytes, entries: dict[str, bytes | None],
                 files: dict[str, bytes] | None = None) -> bytes:
    """The final bytes of a model: ``entries`` set in ``Model.metadata`` (None removes
    one), other entries kept, a zip of ``files`` appended. An earlier appended zip is
    dropped, so a model never carries two.

    Raises:
        ModelError: the model (or the result) exceeds the 2 GB flatbuffer limit.
    """
    schema = _schema()
    data = _load_bytes(tflite_bytes)
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    if any(getattr(b, "offset", 0) > 1 for b in model.buffers or []):
        raise ModelError("the model is over 2 GB (its weights sit outside the flatbuffer), "
                         "so it cannot carry metadata", "export a smaller model")
    kept = []
    for entry in model.metadata or []:
        if _name(entry) in entries:
            model.buffers[entry.buffer].data = None  # drop the stale payload
        else:
            kept.append(entry)
    model.buffers = list(model.buffers or [])
    for name, payload in entries.items():
        if payload is None:
            continue
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        kept.append(entry)
    model.metadata = kept
    size = len(data) + sum(len(p or b"") for p in entries.values()) + 1024
    check_flatbuffer_size(size)
    builder = _flatbuffers().Builder(size)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return standard.append_associated_files(bytes(builder.Output()), files or {})


def check_flatbuffer_size(size: int) -> None:
    """Raises ModelError when ``size`` bytes cannot be one flatbuffer."""
    if size > FLATBUFFER_LIMIT:
        raise ModelError(f"the model with its metadata would be {size / 2**30:.2f} GiB, over the "
                         "2 GiB a TFLite flatbuffer can hold", "export a smaller model")


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")


def _flatbuffers() -> Any:
    import flatbuffers

    return flatbuffers
