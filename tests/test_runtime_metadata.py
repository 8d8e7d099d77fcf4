"""TFLite metadata round trip without TensorFlow, and metadata read by every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.tiny_models import TinyNet, make_onnx, make_openvino, make_tflite, tiny_metadata

from edgecls.errors import ModelError
from edgecls.runtime import load_backend
from edgecls.runtime.metadata import ModelMetadata, Preprocessing
from edgecls.runtime.tflite_metadata import embed_tflite_metadata, read_tflite_metadata


def _meta(**fields: object) -> ModelMetadata:
    values = dict(labels=["daisy", "rose", "tulip"], input_size=(96, 128), precision="int8", input_dtype="uint8",
                  input_quantization=(1.0, 0), output_quantization=(0.00390625, 0),
                  preprocessing=Preprocessing(resize="center_crop"), extra={"run": "r1"})
    values.update(fields)
    return ModelMetadata(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_tflite(tmp_path_factory.mktemp("meta") / "plain.tflite", TinyNet()).read_bytes()


def test_round_trip_and_replace(tiny_tflite: bytes, tmp_path: Path) -> None:
    assert read_tflite_metadata(tiny_tflite) is None
    first = embed_tflite_metadata(tiny_tflite, _meta())
    assert read_tflite_metadata(first) == _meta()
    second = embed_tflite_metadata(first, _meta(labels=["a", "b", "c"]))
    assert read_tflite_metadata(second).labels == ["a", "b", "c"]
    path = tmp_path / "m.tflite"
    path.write_bytes(second)
    assert read_tflite_metadata(path).input_size == (96, 128)
    assert load_backend(path).read_metadata().labels == ["a", "b", "c"]  # still a runnable model


def test_existing_metadata_entries_are_kept(shared_dir: Path) -> None:
    from ai_edge_litert import schema_py_generated as schema

    data = (shared_dir / "models" / "coral" / "mobilenet_v2_1.0_224_quant.tflite").read_bytes()
    meta = _meta(labels=[f"class {i}" for i in range(1001)])
    embedded = embed_tflite_metadata(data, meta)
    model = schema.Model.GetRootAs(embedded, 0)
    names = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    assert "TFLITE_METADATA" in names and "min_runtime_version" in names and "edgecls" in names
    assert read_tflite_metadata(embedded) == meta


def test_not_a_tflite_buffer() -> None:
    with pytest.raises(ModelError, match="TFL3"):
        read_tflite_metadata(b"hello world, not a model")


def test_onnx_and_openvino_metadata(tmp_path: Path) -> None:
    meta = tiny_metadata(TinyNet(), extra={"k": 1})
    assert load_backend(make_onnx(tmp_path / "m.onnx", metadata=meta)).read_metadata() == meta
    assert load_backend(make_openvino(tmp_path / "m.xml", metadata=meta)).read_metadata() == meta
    assert load_backend(make_onnx(tmp_path / "f.onnx")).read_metadata() is None
    assert load_backend(make_openvino(tmp_path / "f.xml")).read_metadata() is None
