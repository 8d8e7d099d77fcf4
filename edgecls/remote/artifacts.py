"""The files a model artifact is made of, as they travel to a device."""

from __future__ import annotations

from pathlib import Path

from edgecls.errors import EdgeclsError
from edgecls.formats import artifact_files, format_for_path


def model_format(model: Path) -> str | None:
    """``tflite``, ``onnx`` or ``openvino`` by suffix (None for anything else)."""
    fmt = format_for_path(model)
    return fmt.name if fmt else None


def model_files(model: Path, folder: str = "") -> dict[str, Path]:
    """Archive name -> local path: the model and its side files (``edgecls.formats``), such as
    the ``.bin`` weights beside an OpenVINO ``.xml``.

    Raises:
        EdgeclsError: the model file does not exist.
    """
    if not model.is_file():
        raise EdgeclsError(f"model {model} does not exist", "check the path")
    prefix = f"{folder}/" if folder else ""
    return {f"{prefix}{path.name}": path for path in artifact_files(model)}
