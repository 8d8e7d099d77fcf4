"""`edgecls inspect`: tables and JSON for every format, ours and foreign."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tiny_models import TinyNet, make_onnx, make_openvino, make_tflite, tiny_metadata

from edgecls.runtime.describe import DESCRIBE_SCHEMA_VERSION
from helpers.cli import run_cli


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inspect")
    net = TinyNet()
    return {
        "tflite": make_tflite(root / "ours.tflite", net, metadata=tiny_metadata(net), quantize="uint8"),
        "tflite_foreign": make_tflite(root / "foreign.tflite", net),
        "onnx_foreign": make_onnx(root / "foreign.onnx", net),
        "openvino": make_openvino(root / "ours.xml", net, metadata=tiny_metadata(net)),
        "tflite_free_batch": make_tflite(root / "free_batch.tflite", net, batch=None),
        "onnx_static": make_onnx(root / "static.onnx", net, dynamic_batch=False),
    }


def test_json_of_our_int8_tflite(models, monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "inspect", str(models["tflite"]), "--json")
    assert code == 0
    d = json.loads(out)
    assert d["schema_version"] == DESCRIBE_SCHEMA_VERSION and d["format"] == "tflite"
    assert d["metadata"]["edgecls"] and d["metadata"]["tflite_metadata"]
    assert d["labels"] == ["red", "green", "blue"] and d["labels_source"] == "edgecls"
    (inp,), (out_tensor,) = d["inputs"], d["outputs"]
    assert inp["dtype"] == "uint8" and inp["shape"] == [1, *TinyNet().size, 3]
    assert inp["quantization"]["scale"] > 0 and out_tensor["quantization"] is not None
    assert d["tflite_metadata"]["normalization"] is None  # uint8 input: raw pixels
    assert d["tflite_metadata"]["label_file"] == "labels.txt"
    assert d["producer"]["name"] == "edgecls" and "ai_edge_litert" in d["producer"]["inspected_with"]
    assert d["preprocessing"]["input_size"] == list(TinyNet().size)


def test_foreign_models_say_what_is_missing(models, monkeypatch, capsys) -> None:
    for key in ("tflite_foreign", "onnx_foreign"):
        code, out = run_cli(monkeypatch, capsys, "inspect", str(models[key]), "--json")
        d = json.loads(out)
        assert code == 0 and not d["metadata"]["edgecls"] and not d["metadata"]["tflite_metadata"]
        assert d["labels"] is None and d["producer"]["name"] is None
    code, out = run_cli(monkeypatch, capsys, "inspect", str(models["onnx_foreign"]))
    assert "none embedded" in out and "metadata" in out


def test_table_of_openvino(models, monkeypatch, capsys) -> None:
    code, out = run_cli(monkeypatch, capsys, "inspect", str(models["openvino"]))
    assert code == 0
    assert "openvino" in out and "edgecls" in out and "red, green, blue" in out
    assert "float32" in out and "Runtime_version" in out


def test_every_format_shows_the_batch_the_runtime_runs(models, monkeypatch, capsys) -> None:
    """Issue 24: TFLite showed batch `?` (its shape_signature) where ONNX and OpenVINO
    showed a static 1; the runtime runs one image at a time in every format."""
    size = list(TinyNet().size)
    batches = {}
    for key in ("tflite_free_batch", "onnx_foreign", "onnx_static", "openvino"):
        code, out = run_cli(monkeypatch, capsys, "inspect", str(models[key]), "--json")
        (inp,) = json.loads(out)["inputs"]
        assert code == 0 and inp["shape"][:3] == [1, *size]
        batches[key] = (inp["batch"], inp["shape_signature"][0])
    assert batches == {"tflite_free_batch": ("resizable", -1), "onnx_foreign": ("resizable", -1),
                       "onnx_static": ("static", 1), "openvino": ("resizable", -1)}
    code, out = run_cli(monkeypatch, capsys, "inspect", str(models["tflite_free_batch"]))
    assert f"[1, {size[0]}, {size[1]}, 3] (batch resizable)" in out and "?" not in out


def test_an_unset_onnx_model_version_is_not_shown(models, tmp_path, monkeypatch, capsys) -> None:
    """tf2onnx writes INT64 max as model_version when none is given."""
    import onnx

    model = onnx.load(str(models["onnx_foreign"]))
    model.model_version = 2**63 - 1
    path = tmp_path / "tf2onnx.onnx"
    onnx.save(model, str(path))
    code, out = run_cli(monkeypatch, capsys, "inspect", str(path), "--json")
    assert code == 0 and json.loads(out)["producer"]["model_version"] is None
    code, out = run_cli(monkeypatch, capsys, "inspect", str(path))
    assert "9223372036854775807" not in out and "model version" not in out
    model.model_version = 7
    onnx.save(model, str(path))
    code, out = run_cli(monkeypatch, capsys, "inspect", str(path))
    assert "model version" in out and "7" in out


def test_bad_file_exits_2(tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a model at all")
    code, out = run_cli(monkeypatch, capsys, "inspect", str(bad))
    assert code == 2 and "not a valid TFLite model" in out and "Traceback" not in out


def test_int8_input_type_warns_about_mediapipe(tmp_path) -> None:
    from rich.console import Console

    from edgecls.cli.export import _warn_int8_input
    from edgecls.export.pipeline import ExportConfig

    console = Console(record=True, width=200)
    _warn_int8_input(ExportConfig(out=tmp_path, formats=["tflite"], precisions=["int8"], input_type="int8"),
                     console)
    assert "MediaPipe Tasks and the Android Task Library refuse int8" in console.export_text()
    quiet = Console(record=True, width=200)
    _warn_int8_input(ExportConfig(out=tmp_path, formats=["tflite"], precisions=["int8"]), quiet)
    assert quiet.export_text() == ""


def test_inspect_model_is_the_cli_json_and_renders_in_a_notebook(models, tmp_path, monkeypatch, capsys) -> None:
    import edgecls

    description = edgecls.inspect_model(models["tflite"])
    code, out = run_cli(monkeypatch, capsys, "inspect", str(models["tflite"]), "--json")
    assert code == 0 and json.loads(json.dumps(description.to_dict())) == json.loads(out)
    assert description.format == "tflite" and description.labels == ["red", "green", "blue"]
    assert description.inputs[0]["dtype"] == "uint8" and description.preprocessing is not None
    page = description._repr_html_()
    assert "<table" in page and "edgecls, TFLite Metadata" in page and "red, green, blue" in page
    many = type(description)({**description.to_dict(), "labels": [f"c{i}" for i in range(60)]})._repr_html_()
    assert "labels (60, from edgecls)" in many and "c49, ..." in many and "c50" not in many
    foreign = edgecls.inspect_model(models["onnx_foreign"])
    assert foreign.labels is None and "none embedded" in foreign._repr_html_()
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(edgecls.ModelError) as error:
        edgecls.inspect_model(bad)
    code, out = run_cli(monkeypatch, capsys, "inspect", str(bad))
    assert code == 2 and out.splitlines()[0] == f"error: {error.value.message}"
