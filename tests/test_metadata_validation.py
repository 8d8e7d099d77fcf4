"""Embedded metadata is validated on read: out-of-schema values are refused with one
line in every format (also with --no-verify), and run errors of damaged models are
user errors, not tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tiny_models import TinyNet, make_onnx, make_openvino, make_tflite, tiny_metadata

from edgecls.errors import ModelError
from edgecls.runtime import load_backend
from edgecls.runtime.metadata import METADATA_SCHEMA_VERSION, ModelMetadata, parse_metadata
from edgecls.runtime.openvino import openvino_cause
from edgecls.runtime.tflite_metadata import embed_tflite_metadata

GOOD = json.loads(tiny_metadata().to_json())


@pytest.fixture(scope="module")
def plain_tflite(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A tiny TFLite model without metadata (TensorFlow converts it once per module)."""
    return make_tflite(tmp_path_factory.mktemp("plain") / "p.tflite", TinyNet()).read_bytes()


def _tflite(path: Path, meta: ModelMetadata, data: bytes) -> Path:
    path.write_bytes(embed_tflite_metadata(data, meta))
    return path


def _with(**changes: object) -> str:
    data = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key in ("color", "resize", "interpolation", "scale", "offset"):
            data["preprocessing"][key] = value
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize("changes, message", [
    ({"color": "CMYK"}, "color 'CMYK'"),
    ({"layout": "NWHC"}, "layout 'NWHC'"),
    ({"resize": "zoom"}, "resize 'zoom'"),
    ({"interpolation": "cubic"}, "interpolation 'cubic'"),
    ({"scale": "fast"}, "scale 'fast' is not a finite number"),
    ({"offset": None}, "offset None"),
    ({"schema_version": METADATA_SCHEMA_VERSION + 1}, "upgrade edgecls"),
    ({"schema_version": "1"}, "schema_version '1'"),
    ({"labels": "red,green"}, "labels is not a list of strings"),
    ({"input_size": [16, -1]}, "input_size"),
    ({"input_quantization": [0, 3]}, "input_quantization"),
    ({"outputs_probabilities": "yes"}, "outputs_probabilities"),
])
def test_out_of_schema_values_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_metadata(_with(**changes), "m.onnx")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_valid_metadata_and_unknown_keys_still_read() -> None:
    meta = parse_metadata(_with(color="bgr", split_salt="abc", split_fractions=[0.8, 0.1, 0.1]),
                          "m.onnx")
    assert meta.preprocessing.color == "BGR"
    assert meta.extra["split_salt"] == "abc"  # newer top-level fields are kept, not refused
    assert ModelMetadata.from_json(tiny_metadata().to_json()) == tiny_metadata()


def test_not_json_is_refused() -> None:
    for text in ("{broken", "[1, 2]", b"\xff\xfe"):
        with pytest.raises(ModelError, match="embedded edgecls metadata is invalid"):
            parse_metadata(text, "m.tflite")


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "openvino"])
def test_non_numeric_scale_in_every_format(fmt: str, tmp_path: Path, plain_tflite: bytes) -> None:
    meta = tiny_metadata()
    if fmt == "tflite":  # the writer refuses a bad scale: edit the bytes, same length
        meta.preprocessing.scale = 2.0
        model = _tflite(tmp_path / "m.tflite", meta, plain_tflite)
        data = model.read_bytes()
        assert data.count(b'"scale":2.0') == 1
        model.write_bytes(data.replace(b'"scale":2.0', b'"scale":"x"'))
    else:
        meta.preprocessing.scale = "x"  # type: ignore[assignment]
        make = {"onnx": make_onnx, "openvino": make_openvino}[fmt]
        model = make(tmp_path / f"m{'.onnx' if fmt == 'onnx' else '.xml'}", TinyNet(), meta)
    for verify in (True, False):
        with pytest.raises(ModelError, match="scale 'x' is not a finite number") as caught:
            load_backend(model, verify=verify).read_metadata()
        assert "\n" not in str(caught.value)


def test_openvino_error_shows_the_cause() -> None:
    error = RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\n"
                         "Check 'res.status == pugi::status_ok' failed at "
                         "src/frontends/ir/src/input_model.cpp:219:\n"
                         "Start-end tags mismatch at offset 2367\n\n")
    assert openvino_cause(error) == "Start-end tags mismatch at offset 2367"


def test_truncated_openvino_names_the_real_cause(tmp_path: Path) -> None:
    xml = make_openvino(tmp_path / "m.xml", TinyNet(), tiny_metadata())
    xml.write_bytes(xml.read_bytes()[:1500])
    with pytest.raises(ModelError) as caught:
        load_backend(xml)
    assert "Exception from" not in str(caught.value)
    assert "is not a valid OpenVINO IR model (" in str(caught.value)


def test_tflite_tensor_without_data_is_a_model_error(tmp_path: Path, plain_tflite: bytes) -> None:
    """A constant tensor pointed at the empty buffer: LiteRT says "lacks data" on invoke."""
    from ai_edge_litert import schema_py_generated as schema
    import flatbuffers
    import numpy as np

    source = plain_tflite
    model = schema.ModelT.InitFromPackedBuf(bytearray(source), 0)
    graph = model.subgraphs[0]
    constant = next(t for t in graph.tensors
                    if t.buffer and model.buffers[t.buffer].data is not None
                    and len(model.buffers[t.buffer].data) >= 36)
    constant.buffer = 0
    builder = flatbuffers.Builder(len(source))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(bytes(builder.Output()))
    with pytest.raises(ModelError) as caught:
        backend = load_backend(broken)
        backend.run(np.zeros((1, 16, 16, 3), np.float32))
    assert "\n" not in str(caught.value)

