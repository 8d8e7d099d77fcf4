"""Model file formats and image file suffixes: the one description every layer reads.

A ``Format`` ties together what would otherwise be re-typed in export, runtime, bench,
inspect, remote and the CLI: the artifact's suffix, the side files that travel with it
(OpenVINO's ``.bin``, whose digest the ``.xml`` carries), the exporter that writes it and
the backend that runs it, the precisions and I/O types it offers, whether its input may
take any batch size, and the Python modules and pip extra that run it on a device::

    fmt = format_for_path("model_int8.xml")   # OPENVINO
    fmt.files(Path("model_int8.xml"))          # [model_int8.xml, model_int8.bin]
    fmt.digested_file(Path("model_int8.xml"))  # model_int8.bin
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecls.errors import ConfigError


# Every precision an exporter may write and every input/output dtype of an INT8 artifact.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "dynamic", "int8")
IO_TYPES: tuple[str, ...] = ("uint8", "int8", "float32")


@dataclass(frozen=True)
class Format:
    """One model file format.

    Attributes:
        name: format name used by ``edgecls export --formats`` and in reports.
        suffix: the artifact's suffix (lower case, with the dot).
        side_suffixes: suffixes of files that must sit beside the artifact.
        exporter: name of the exporter in ``edgecls.export`` that writes it.
        backend: name of the runtime backend that runs it.
        title: human name, for messages.
        precisions: what ``--precision`` may ask of it.
        io_types: input/output dtypes an INT8 artifact may take (``--input-type``).
        dynamic_batch: its input may take any batch size (``--dynamic-batch``).
        digested_side: the side file whose digest the artifact carries (None: none).
        runtime_modules: Python modules any one of which runs it, the preferred first.
        runtime_extra: the pip extra that installs the preferred one.
        runtime_distributions: pip distributions that run it (a bench report records
            the versions of those installed).
    """

    name: str
    suffix: str
    side_suffixes: tuple[str, ...]
    exporter: str
    backend: str
    title: str
    runtime_modules: tuple[str, ...]
    runtime_extra: str
    runtime_distributions: tuple[str, ...]
    precisions: tuple[str, ...] = PRECISIONS
    io_types: tuple[str, ...] = ("float32",)
    dynamic_batch: bool = False
    digested_side: str | None = None

    def side_files(self, path: str | Path) -> list[Path]:
        """The side files an artifact at ``path`` needs (whether or not they exist)."""
        path = Path(path)
        return [path.with_suffix(suffix) for suffix in self.side_suffixes]

    def files(self, path: str | Path) -> list[Path]:
        """The artifact and those of its side files that exist, artifact first."""
        return [Path(path)] + [side for side in self.side_files(path) if side.is_file()]

    def digested_file(self, path: str | Path) -> Path | None:
        """The side file whose digest an artifact at ``path`` carries (None: none)."""
        return Path(path).with_suffix(self.digested_side) if self.digested_side else None


TFLITE = Format("tflite", ".tflite", (), exporter="tflite", backend="litert", title="TFLite",
                runtime_modules=("ai_edge_litert", "tflite_runtime", "tensorflow"),
                runtime_extra="runtime-tflite", runtime_distributions=("ai-edge-litert", "tflite-runtime"),
                io_types=IO_TYPES)
ONNX = Format("onnx", ".onnx", (), exporter="onnx", backend="onnxruntime", title="ONNX",
              runtime_modules=("onnxruntime",), runtime_extra="runtime-onnx",
              runtime_distributions=("onnxruntime", "onnxruntime-gpu"), dynamic_batch=True)
OPENVINO = Format("openvino", ".xml", (".bin",), exporter="openvino", backend="openvino",
                  title="OpenVINO IR", runtime_modules=("openvino",), runtime_extra="runtime-openvino",
                  runtime_distributions=("openvino",), dynamic_batch=True, digested_side=".bin")
FORMATS: tuple[Format, ...] = (TFLITE, ONNX, OPENVINO)
FORMAT_NAMES: tuple[str, ...] = tuple(fmt.name for fmt in FORMATS)
MODEL_SUFFIXES: tuple[str, ...] = tuple(fmt.suffix for fmt in FORMATS)

# Images every stage reads (OpenCV decodes all of them): dataset scan, calibration
# folders and ``edgecls run`` image folders.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# Image formats edgecls does not decode, by suffix and by signature: named in messages so
# that a GIF among JPEGs is not called a "non-image file".
UNSUPPORTED_IMAGE_SUFFIXES: dict[str, str] = {
    ".gif": "GIF", ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".jxl": "JPEG XL",
    ".jp2": "JPEG 2000", ".svg": "SVG", ".psd": "PSD", ".ico": "ICO",
}
_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC",
               b"heis": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF",
               b"avis": "AVIF"}


def unsupported_image_format(head: bytes, name: str = "") -> str | None:
    """The name of an image format edgecls does not read (GIF, HEIC/HEIF, AVIF...) from a
    file's first bytes, else from its name's suffix; None for anything else."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[4:8] == b"ftyp" and head[8:12] in _ISO_BRANDS:
        return _ISO_BRANDS[head[8:12]]
    if head[:2] == b"\xff\x0a" or head[4:12] == b"JXL \r\n\x87\n":
        return "JPEG XL"
    return UNSUPPORTED_IMAGE_SUFFIXES.get(Path(name).suffix.lower())


def unsupported_image_message(format_name: str) -> str:
    """What to say of a file in an image format edgecls does not read."""
    return f"unsupported image format {format_name}: convert to JPEG/PNG to use it"


def get_format(name: str) -> Format:
    """The format called ``name``.

    Raises:
        ConfigError: no format has that name.
    """
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise ConfigError(f"unknown export format {name!r}",
                      f"choose from: {', '.join(f.name for f in FORMATS)}")


def format_for_backend(backend: str) -> Format:
    """The format the runtime backend called ``backend`` runs.

    Raises:
        ConfigError: no format runs on that backend.
    """
    for fmt in FORMATS:
        if fmt.backend == backend:
            return fmt
    raise ConfigError(f"unknown backend {backend!r}",
                      f"choose from: {', '.join(f.backend for f in FORMATS)}")


def format_for_path(path: str | Path) -> Format | None:
    """The format of a model file by its suffix (any case), None when no format has it."""
    suffix = Path(path).suffix.lower()
    return next((fmt for fmt in FORMATS if fmt.suffix == suffix), None)


def artifact_files(path: str | Path) -> list[Path]:
    """The files of one artifact: the file itself plus its existing side files."""
    fmt = format_for_path(path)
    return fmt.files(path) if fmt else [Path(path)]


def digested_file(path: str | Path) -> Path | None:
    """The side file whose digest the artifact at ``path`` carries (None: none, or not a model)."""
    fmt = format_for_path(path)
    return fmt.digested_file(path) if fmt else None


def artifact_size(path: str | Path) -> int:
    """Bytes on disk of an artifact with its side files (0 when the file is missing)."""
    if not Path(path).is_file():
        return 0
    return sum(f.stat().st_size for f in artifact_files(path))


def model_of_side_file(path: str | Path) -> Path | None:
    """The model file a side file belongs to (``model.bin`` -> ``model.xml``), None when
    ``path`` is no format's side file."""
    suffix = Path(path).suffix.lower()
    fmt = next((f for f in FORMATS if suffix in f.side_suffixes), None)
    return Path(path).with_suffix(fmt.suffix) if fmt else None


def without_side_files(paths: list[Path]) -> list[Path]:
    """``paths`` less the side files whose model is also among them (a shell glob such as
    ``export/model_*`` lists OpenVINO's ``.bin`` beside its ``.xml``); a lone side file
    stays, for the caller to refuse with a message naming its model."""
    given = {Path(p) for p in paths}
    return [p for p in paths if model_of_side_file(p) not in given]


def is_image(path: str | Path) -> bool:
    """True when the file name ends in one of ``IMAGE_SUFFIXES`` (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
