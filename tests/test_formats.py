"""``edgecls.formats`` is the one description of the model formats: the other layers
derive their suffixes, side files, precisions, batch rules and runtime packages from it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edgecls import formats
from edgecls.errors import ConfigError
from edgecls.export.base import EXPORTERS, ExportSource
from edgecls.formats import FORMATS, ONNX, OPENVINO, TFLITE
from edgecls.runtime.backends import BACKENDS

PACKAGE = Path(formats.__file__).parent
SUFFIXES = {suffix for fmt in FORMATS for suffix in (fmt.suffix, *fmt.side_suffixes)}


def _suffix_literals(path: Path) -> list[str]:
    """Model suffixes written as string constants (docstrings aside) in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in SUFFIXES and id(node) not in docstrings]


def test_model_suffixes_are_written_only_in_formats() -> None:
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path.name != "formats.py"
             for hit in _suffix_literals(path)]
    assert not found, "derive these from edgecls.formats:\n" + "\n".join(found)


def test_every_format_has_its_exporter_and_backend_registered() -> None:
    assert {fmt.exporter for fmt in FORMATS} <= set(EXPORTERS.list())
    assert {fmt.backend for fmt in FORMATS} <= set(BACKENDS.list())
    for fmt in FORMATS:
        assert EXPORTERS.get(fmt.exporter)().precisions == fmt.precisions
        assert formats.format_for_backend(fmt.backend) is fmt
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        formats.format_for_backend("tensorrt")


def test_digested_side_file_and_dynamic_batch_come_from_the_format(tmp_path: Path) -> None:
    assert formats.digested_file("m/model_int8.xml") == Path("m/model_int8.bin")
    assert formats.digested_file("m/model_int8.tflite") is None
    assert formats.digested_file("notes.txt") is None
    source = ExportSource(model=None, saved_model=tmp_path, metadata=None, work_dir=tmp_path,  # type: ignore[arg-type]
                          dynamic_batch=True)
    assert [source.batch_dim(fmt) for fmt in (TFLITE, ONNX, OPENVINO)] == [1, -1, -1]
    assert ExportSource(None, tmp_path, None, tmp_path).batch_dim(ONNX) == 1  # type: ignore[arg-type]


def test_runtime_packages_per_format_feed_the_device_and_the_cli() -> None:
    from edgecls.cli import _EXTRA_FOR_MODULE
    from edgecls.remote.device import BACKEND_FORMATS, FORMAT_EXTRAS, FORMAT_MODULES

    assert FORMAT_MODULES["tflite"] == ("ai_edge_litert", "tflite_runtime", "tensorflow")
    assert FORMAT_EXTRAS == {"tflite": "runtime-tflite", "onnx": "runtime-onnx", "openvino": "runtime-openvino"}
    assert BACKEND_FORMATS == {"litert": "tflite", "onnxruntime": "onnx", "openvino": "openvino"}
    assert _EXTRA_FOR_MODULE["onnxruntime"] == "runtime-onnx"
    assert _EXTRA_FOR_MODULE["tensorflow"] == "train"  # a fallback runtime module keeps its own extra
    from edgecls.bench.machine import BACKEND_DISTRIBUTIONS

    assert BACKEND_DISTRIBUTIONS == ("ai-edge-litert", "tflite-runtime", "onnxruntime", "onnxruntime-gpu", "openvino")
