"""edgecls metadata inside a TFLite flatbuffer, without TensorFlow.

The metadata is a ``Model.metadata`` entry named ``METADATA_KEY`` ("edgecls") whose
buffer holds the UTF-8 JSON of ``ModelMetadata.to_json()``. Other entries (such as
``TFLITE_METADATA`` or ``min_runtime_version``) are kept as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgecls.errors import ModelError
from edgecls.runtime.metadata import METADATA_KEY, ModelMetadata

_FILE_IDENTIFIER = b"TFL3"


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


def read_tflite_metadata(path_or_bytes: str | Path | bytes) -> ModelMetadata | None:
    """The embedded edgecls metadata of a TFLite model, or None for a foreign model."""
    data = _load_bytes(path_or_bytes)
    model = _schema().Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if (entry.Name() or b"").decode("utf-8", "replace") != METADATA_KEY:
            continue
        buffer = model.Buffers(entry.Buffer())
        payload = _buffer_bytes(buffer, data)
        try:
            return ModelMetadata.from_json(payload.decode("utf-8"))
        except (ValueError, TypeError) as exc:
            raise ModelError(f"embedded edgecls metadata is unreadable ({exc})",
                             "re-export the model with `edgecls export`") from None
    return None


def _buffer_bytes(buffer: Any, data: bytes) -> bytes:
    """A buffer's bytes, inline or (for models over 2 GB) stored at an offset in the file."""
    if buffer.DataLength():
        return buffer.DataAsNumpy().tobytes()
    offset, size = buffer.Offset(), buffer.Size()
    return data[offset : offset + size] if offset > 1 and size else b""


def embed_tflite_metadata(tflite_bytes: bytes, meta: ModelMetadata) -> bytes:
    """Returns the model with ``meta`` embedded (replacing an earlier edgecls entry)."""
    schema = _schema()
    data = _load_bytes(tflite_bytes)
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    if any(getattr(b, "offset", 0) > 1 for b in model.buffers or []):
        raise ModelError("TFLite models with external (>2 GB) buffers cannot carry metadata here")
    payload = np.frombuffer(meta.to_json().encode("utf-8"), dtype=np.uint8)
    entries = []
    for entry in model.metadata or []:
        if _name(entry) == METADATA_KEY:
            model.buffers[entry.buffer].data = None  # drop the stale payload
        else:
            entries.append(entry)
    buffer = schema.BufferT()
    buffer.data = payload
    model.buffers = list(model.buffers or []) + [buffer]
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = _flatbuffers().Builder(len(data) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def _name(entry: Any) -> str:
    name = entry.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")


def _flatbuffers() -> Any:
    import flatbuffers

    return flatbuffers
