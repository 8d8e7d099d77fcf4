"""The files a model artifact is made of, as they travel to a device."""

from __future__ import annotations

from pathlib import Path

from edgecls.bench.runner import FORMATS
from edgecls.errors import EdgeclsError


def model_format(model: Path) -> str | None:
    """``tflite``, ``onnx`` or ``openvino`` by suffix (None for anything else)."""
    return FORMATS.get(model.suffix.lower())


def model_files(model: Path, folder: str = "") -> dict[str, Path]:
    """Archive name -> local path: the model, and the ``.bin`` weights beside an OpenVINO ``.xml``.

    Raises:
        EdgeclsError: the model file does not exist.
    """
    if not model.is_file():
        raise EdgeclsError(f"model {model} does not exist", "check the path")
    prefix = f"{folder}/" if folder else ""
    files = {f"{prefix}{model.name}": model}
    weights = model.with_suffix(".bin")
    if model_format(model) == "openvino" and weights.is_file():
        files[f"{prefix}{weights.name}"] = weights
    return files
