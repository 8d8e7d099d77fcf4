"""Standard TFLite Metadata (``metadata_schema.fbs``), written and read without TensorFlow.

MediaPipe Tasks, the Android Task Library and ML Kit read a ``Model.metadata`` entry
named ``TFLITE_METADATA`` whose buffer is a ``ModelMetadata`` flatbuffer (file
identifier ``M001``); associated files such as the labels travel in a zip archive
appended to the ``.tflite``. This module builds and parses that flatbuffer with the
plain ``flatbuffers`` package, following the field layout of the published schema
(version 1.5.0; every field used here exists since 1.0.0). Putting the entry into a
model and the zip behind it is ``tflite_metadata``'s job.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecls.errors import ModelError
from edgecls.runtime.metadata import ModelMetadata

STANDARD_KEY = "TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"
_IDENTIFIER = b"M001"

# Enum values and union type codes of the published schema.
_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
_CONTENT_FEATURE, _CONTENT_IMAGE = 1, 2
_UNIT_NORMALIZATION = 1
_FILE_AXIS_LABELS = 2


class _Slot:
    """Field slots in declaration order (a union takes two: its type, then its value)."""

    # ModelMetadata
    MODEL_NAME, MODEL_DESCRIPTION, MODEL_VERSION, SUBGRAPHS = 0, 1, 2, 3
    AUTHOR, LICENSE, MODEL_FILES, MIN_PARSER_VERSION = 4, 5, 6, 7
    # SubGraphMetadata
    INPUTS, OUTPUTS = 2, 3
    # TensorMetadata
    TENSOR_NAME, TENSOR_DESCRIPTION, CONTENT, PROCESS_UNITS, STATS, TENSOR_FILES = 0, 1, 3, 4, 5, 6
    # Content: content_properties (union), range
    PROPERTIES_TYPE, PROPERTIES = 0, 1
    # ImageProperties
    COLOR_SPACE, DEFAULT_SIZE = 0, 1
    # ImageSize
    WIDTH, HEIGHT = 0, 1
    # ProcessUnit: options (union)
    OPTIONS_TYPE, OPTIONS = 0, 1
    # NormalizationOptions
    MEAN, STD = 0, 1
    # Stats
    MAX, MIN = 0, 1
    # AssociatedFile
    FILE_NAME, FILE_DESCRIPTION, FILE_TYPE, FILE_LOCALE = 0, 1, 2, 3


@dataclass
class StandardMetadata:
    """The parts of a standard ``ModelMetadata`` an image classifier uses.

    Attributes:
        normalization: (mean, std) per channel for a float input: input = (pixel - mean) / std.
        labels: the first output's ``TENSOR_AXIS_LABELS`` file, one label per line
            (empty when the file is not in the appended zip).
        label_file: that file's name as the metadata names it.
        associated_files: names of every associated file the metadata mentions.
    """

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    license: str | None = None
    min_parser_version: str | None = None
    input_name: str | None = None
    color_space: str | None = None
    normalization: tuple[list[float], list[float]] | None = None
    output_name: str | None = None
    label_file: str | None = None
    labels: list[str] = field(default_factory=list)
    associated_files: list[str] = field(default_factory=list)


@dataclass
class ImageClassifierInfo:
    """What the writer needs to describe an image classifier (see ``build``)."""

    name: str
    description: str
    labels: Sequence[str]
    input_size: tuple[int, int]  # (height, width)
    float_input: bool
    mean: float = 0.0  # a float input is (pixel - mean) / std
    std: float = 1.0
    color_space: str = "RGB"
    outputs_probabilities: bool = True
    version: str | None = None
    author: str | None = None
    license: str | None = None


def check_labels(labels: Sequence[str]) -> None:
    """Raises ModelError unless the labels fit a one-label-per-line file."""
    if not labels:
        raise ModelError("the model has no labels to write into its metadata",
                         "export from a run whose dataset has at least one class")
    for i, label in enumerate(labels):
        if not str(label).strip():
            raise ModelError(f"label {i} is empty", "every class needs a non-empty name")
        if any(c in str(label) for c in "\r\n"):
            raise ModelError(f"label {i} ({label!r}) contains a line break",
                             "labels travel one per line in the TFLite label file; rename the class")


def labels_file_bytes(labels: Sequence[str]) -> bytes:
    """The ``TENSOR_AXIS_LABELS`` file: one label per line, UTF-8."""
    check_labels(labels)
    return ("\n".join(str(label) for label in labels) + "\n").encode("utf-8")


# -- writing ----------------------------------------------------------------------------
def build(info: ImageClassifierInfo) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier M001) of an image classifier."""
    import flatbuffers

    check_labels(info.labels)
    builder = flatbuffers.Builder(1024)
    subgraph = _table(builder, [
        (_Slot.INPUTS, "offset", _offsets(builder, [_input_tensor(builder, info)])),
        (_Slot.OUTPUTS, "offset", _offsets(builder, [_output_tensor(builder, info)])),
    ])
    root = _table(builder, [
        (_Slot.MODEL_NAME, "offset", builder.CreateString(info.name)),
        (_Slot.MODEL_DESCRIPTION, "offset", builder.CreateString(info.description)),
        (_Slot.MODEL_VERSION, "offset", _string(builder, info.version)),
        (_Slot.SUBGRAPHS, "offset", _offsets(builder, [subgraph])),
        (_Slot.AUTHOR, "offset", _string(builder, info.author)),
        (_Slot.LICENSE, "offset", _string(builder, info.license)),
        (_Slot.MIN_PARSER_VERSION, "offset", builder.CreateString(MIN_PARSER_VERSION)),
    ])
    builder.Finish(root, file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def _input_tensor(builder: Any, info: ImageClassifierInfo) -> int:
    height, width = info.input_size
    size = _table(builder, [(_Slot.WIDTH, "uint", width), (_Slot.HEIGHT, "uint", height)])
    color = {name: code for code, name in _COLOR_SPACES.items()}.get(info.color_space, 0)
    image = _table(builder, [(_Slot.COLOR_SPACE, "byte", color), (_Slot.DEFAULT_SIZE, "offset", size)])
    content = _table(builder, [(_Slot.PROPERTIES_TYPE, "byte", _CONTENT_IMAGE),
                               (_Slot.PROPERTIES, "offset", image)])
    low, high = (0.0, 255.0)
    units = None
    if info.float_input:
        normalization = _table(builder, [(_Slot.MEAN, "offset", _floats(builder, [info.mean])),
                                         (_Slot.STD, "offset", _floats(builder, [info.std]))])
        unit = _table(builder, [(_Slot.OPTIONS_TYPE, "byte", _UNIT_NORMALIZATION),
                                (_Slot.OPTIONS, "offset", normalization)])
        units = _offsets(builder, [unit])
        low, high = (low - info.mean) / info.std, (high - info.mean) / info.std
    stats = _table(builder, [(_Slot.MAX, "offset", _floats(builder, [high])),
                             (_Slot.MIN, "offset", _floats(builder, [low]))])
    return _table(builder, [
        (_Slot.TENSOR_NAME, "offset", builder.CreateString("image")),
        (_Slot.TENSOR_DESCRIPTION, "offset", builder.CreateString(
            f"Input image, {info.color_space} pixels 0..255 resized to {height}x{width}.")),
        (_Slot.CONTENT, "offset", content),
        (_Slot.PROCESS_UNITS, "offset", units),
        (_Slot.STATS, "offset", stats),
    ])


def _output_tensor(builder: Any, info: ImageClassifierInfo) -> int:
    feature = _table(builder, [])
    content = _table(builder, [(_Slot.PROPERTIES_TYPE, "byte", _CONTENT_FEATURE),
                               (_Slot.PROPERTIES, "offset", feature)])
    labels = _table(builder, [
        (_Slot.FILE_NAME, "offset", builder.CreateString(LABELS_FILE)),
        (_Slot.FILE_DESCRIPTION, "offset", builder.CreateString("Class names, one per output index.")),
        (_Slot.FILE_TYPE, "byte", _FILE_AXIS_LABELS),
    ])
    stats = None
    if info.outputs_probabilities:
        stats = _table(builder, [(_Slot.MAX, "offset", _floats(builder, [1.0])),
                                 (_Slot.MIN, "offset", _floats(builder, [0.0]))])
    what = "Probabilities" if info.outputs_probabilities else "Scores (logits)"
    return _table(builder, [
        (_Slot.TENSOR_NAME, "offset", builder.CreateString(
            "probability" if info.outputs_probabilities else "logits")),
        (_Slot.TENSOR_DESCRIPTION, "offset", builder.CreateString(
            f"{what} of the {len(info.labels)} labels.")),
        (_Slot.CONTENT, "offset", content),
        (_Slot.STATS, "offset", stats),
        (_Slot.TENSOR_FILES, "offset", _offsets(builder, [labels])),
    ])


def _table(builder: Any, fields: list[tuple[int, str, Any]]) -> int:
    """One table from (slot, kind, value) fields; children must already be built."""
    slots = 1 + max((slot for slot, _, _ in fields), default=-1)
    builder.StartObject(slots)
    for slot, kind, value in fields:
        if value is None:
            continue
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "byte":
            builder.PrependUint8Slot(slot, value, 0)
        elif kind == "uint":
            builder.PrependUint32Slot(slot, value, 0)
    return builder.EndObject()


def _string(builder: Any, text: str | None) -> int | None:
    return builder.CreateString(text) if text else None


def _offsets(builder: Any, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder: Any, values: list[float]) -> int:
    return builder.CreateNumpyVector(np.asarray(values, dtype=np.float32))


# -- reading ----------------------------------------------------------------------------
class _Reader:
    """Reads one table of a flatbuffer by field slot."""

    def __init__(self, tab: Any) -> None:
        self.tab = tab

    def _at(self, slot: int) -> int:
        return self.tab.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str | None:
        at = self._at(slot)
        return self.tab.String(at + self.tab.Pos).decode("utf-8", "replace") if at else None

    def byte(self, slot: int) -> int:
        at = self._at(slot)
        return int(self.tab.Bytes[self.tab.Pos + at]) if at else 0

    def table(self, slot: int) -> _Reader | None:
        from flatbuffers.table import Table

        at = self._at(slot)
        return _Reader(Table(self.tab.Bytes, self.tab.Indirect(at + self.tab.Pos))) if at else None

    def tables(self, slot: int) -> list[_Reader]:
        from flatbuffers.table import Table

        at = self._at(slot)
        if not at:
            return []
        start = self.tab.Vector(at)
        return [_Reader(Table(self.tab.Bytes, self.tab.Indirect(start + 4 * i)))
                for i in range(self.tab.VectorLen(at))]

    def floats(self, slot: int) -> list[float]:
        at = self._at(slot)
        if not at:
            return []
        start, count = self.tab.Vector(at), self.tab.VectorLen(at)
        return list(struct.unpack_from(f"<{count}f", self.tab.Bytes, start))


def parse(buffer: bytes, files: dict[str, bytes] | None = None) -> StandardMetadata:
    """Reads a ``ModelMetadata`` flatbuffer; ``files`` are the associated files by name."""
    from flatbuffers.table import Table

    if len(buffer) < 8 or buffer[4:8] != _IDENTIFIER:
        raise ModelError("the TFLITE_METADATA buffer is not a ModelMetadata flatbuffer (no M001)",
                         "the model's metadata is damaged; re-export or re-download it")
    try:
        root = _Reader(Table(bytearray(buffer), struct.unpack_from("<I", buffer, 0)[0]))
        return _parse_root(root, files or {})
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(f"the TFLITE_METADATA buffer is damaged ({exc})",
                         "re-export or re-download the model") from None


def _parse_root(root: _Reader, files: dict[str, bytes]) -> StandardMetadata:
    meta = StandardMetadata(
        name=root.string(_Slot.MODEL_NAME), description=root.string(_Slot.MODEL_DESCRIPTION),
        version=root.string(_Slot.MODEL_VERSION), author=root.string(_Slot.AUTHOR),
        license=root.string(_Slot.LICENSE), min_parser_version=root.string(_Slot.MIN_PARSER_VERSION))
    meta.associated_files = [f.string(_Slot.FILE_NAME) or "" for f in root.tables(_Slot.MODEL_FILES)]
    subgraphs = root.tables(_Slot.SUBGRAPHS)
    if not subgraphs:
        return meta
    inputs, outputs = subgraphs[0].tables(_Slot.INPUTS), subgraphs[0].tables(_Slot.OUTPUTS)
    if inputs:
        _read_input(inputs[0], meta)
    for tensor in [*inputs, *outputs]:
        meta.associated_files += [f.string(_Slot.FILE_NAME) or "" for f in tensor.tables(_Slot.TENSOR_FILES)]
    if outputs:
        meta.output_name = outputs[0].string(_Slot.TENSOR_NAME)
        meta.label_file = _label_file(outputs[0])
        if meta.label_file in files:
            text = files[meta.label_file].decode("utf-8", "replace")
            meta.labels = [line.strip() for line in text.splitlines() if line.strip()]
    return meta


def _read_input(tensor: _Reader, meta: StandardMetadata) -> None:
    meta.input_name = tensor.string(_Slot.TENSOR_NAME)
    content = tensor.table(_Slot.CONTENT)
    if content is not None and content.byte(_Slot.PROPERTIES_TYPE) == _CONTENT_IMAGE:
        image = content.table(_Slot.PROPERTIES)
        if image is not None:
            meta.color_space = _COLOR_SPACES.get(image.byte(_Slot.COLOR_SPACE), "UNKNOWN")
    for unit in tensor.tables(_Slot.PROCESS_UNITS):
        options = unit.table(_Slot.OPTIONS)
        if unit.byte(_Slot.OPTIONS_TYPE) == _UNIT_NORMALIZATION and options is not None:
            meta.normalization = (options.floats(_Slot.MEAN), options.floats(_Slot.STD))
            break


def _label_file(tensor: _Reader) -> str | None:
    """The axis-labels file, preferring the one without a locale."""
    labels = [f for f in tensor.tables(_Slot.TENSOR_FILES) if f.byte(_Slot.FILE_TYPE) == _FILE_AXIS_LABELS]
    labels.sort(key=lambda f: bool(f.string(_Slot.FILE_LOCALE)))
    return labels[0].string(_Slot.FILE_NAME) if labels else None


def apply_to(meta: ModelMetadata, std: StandardMetadata, quantized_input: bool) -> ModelMetadata:
    """``meta`` (derived from a foreign model's tensors) completed by its standard metadata:
    labels, name, and for a float input the normalization (an 8-bit input takes raw
    pixels whatever the float normalization says, as MediaPipe feeds it)."""
    meta.labels = list(std.labels)
    meta.model_name = std.name
    meta.producer = f"TFLite Metadata ({std.name})" if std.name else "TFLite Metadata"
    meta.extra["tflite_metadata"] = {"description": std.description, "version": std.version,
                                     "author": std.author, "license": std.license}
    if std.normalization and not quantized_input:
        mean, std_dev = std.normalization
        if len(set(mean)) > 1 or len(set(std_dev)) > 1:
            raise ModelError(f"per-channel normalization (mean {mean}, std {std_dev}) is not supported",
                             "pass a model whose channels share one mean and std")
        meta.preprocessing.scale = 1.0 / std_dev[0]
        meta.preprocessing.offset = -mean[0] / std_dev[0]
    return meta


# -- associated files (a zip appended to the model) ----------------------------------------
def read_associated_files(data: bytes) -> dict[str, bytes]:
    """The files of a zip appended to a model (empty when there is none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return {}


def append_associated_files(flatbuffer: bytes, files: dict[str, bytes]) -> bytes:
    """``flatbuffer`` with a zip of ``files`` appended, stored uncompressed as the
    metadata readers require (the interpreter ignores bytes past the flatbuffer)."""
    if not files:
        return flatbuffer
    out = io.BytesIO(flatbuffer)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return out.getvalue()
