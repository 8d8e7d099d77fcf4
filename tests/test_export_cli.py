"""`edgecls export`: the accuracy gate, its remedies, and the bad inputs."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from helpers.cli import run_cli
from helpers.export import NNCF_BAR_TEXT
from helpers.images import black_image_folder


@pytest.fixture(scope="module")
def run_dir(tiny_runs, tmp_path_factory) -> Path:
    return tiny_runs.copy(tmp_path_factory.mktemp("export_cli"))


def test_gate_trips_on_one_black_calibration_image(run_dir, tmp_path, monkeypatch, capsys) -> None:
    calib = black_image_folder(tmp_path / "calib")
    out = tmp_path / "out"
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "--formats", "tflite",
                         "--precision", "int8", "--calibration", str(calib), "--out", str(out),
                         "--no-remedies")
    assert code == 2
    assert "FAIL" in text and "model_int8.tflite" in text and "--calibration" in text
    assert not (out / "changes.html").exists()  # the RISE page is opt-in (--explain)
    record = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert record["passed"] is False and record["drop_pp"] > 1.0
    assert record["verdict"] == "failed" and record["interval_pp"][0] > 0  # a real drop
    assert record["agreement"] < 0.9


def test_remedies_recover_a_broken_calibration(run_dir, tmp_path) -> None:
    from edgecls.export.pipeline import ExportConfig, export_run

    config = ExportConfig(out=tmp_path / "out", formats=["onnx"], precisions=["int8"],
                          calibration=str(black_image_folder(tmp_path / "calib")))
    manifest = export_run(run_dir, config)
    artifact = manifest.artifacts[0]
    assert artifact.passed, artifact
    assert artifact.remedies and any(r.kept and r.passed for r in artifact.remedies)
    saved = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert saved["schema_version"] == 3
    assert saved["artifacts"][0]["remedies"][-1]["kept"] is True


def test_manifest_fields_and_passing_exit_code(run_dir, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "-f", "onnx,openvino",
                         "-p", "fp32,int8", "--out", str(out), "--explain")
    assert code == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["held_out_by_split"]) == {"val", "test"}
    assert manifest["held_out_images"] == sum(manifest["held_out_by_split"].values())
    assert "held-out images (" in text and "95% interval" in text
    assert not [bar for bar in NNCF_BAR_TEXT if bar in text], text  # OpenVINO INT8 ran NNCF
    assert [(a["format"], a["precision"]) for a in manifest["artifacts"]] == [
        ("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    for artifact in manifest["artifacts"]:
        for key in ("path", "size_bytes", "sha256", "accuracy", "float_accuracy", "agreement",
                    "passed", "kl_divergence", "per_class_drop_pp", "settings", "remedies",
                    "verdict", "interval_pp", "right_to_wrong", "wrong_to_right", "images",
                    "images_by_split", "worst_class", "gate_note"):
            assert key in artifact
        low, high = artifact["interval_pp"]
        assert low <= artifact["drop_pp"] <= high
        assert (out / artifact["path"]).is_file()
    assert sorted(p.name for p in out.iterdir()) == [
        "changes.html", "manifest.json", "model_fp32.bin", "model_fp32.onnx", "model_fp32.xml",
        "model_int8.bin", "model_int8.onnx", "model_int8.xml", "predictions.json"]


@pytest.mark.parametrize("args, message", [
    (["--formats", "coreml"], "unknown export format 'coreml'"),
    (["--precision", "int4"], "unknown precision 'int4'"),
    (["--input-type", "float64", "-f", "tflite"], "unknown input type 'float64'"),
])
def test_bad_options_exit_2(run_dir, tmp_path, monkeypatch, capsys, args, message) -> None:
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "--out", str(tmp_path), *args)
    assert code == 2 and message in text


def test_run_without_model_exits_2(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "run").mkdir()
    code, text = run_cli(monkeypatch, capsys, "export", str(tmp_path / "run"))
    assert code == 2 and "holds no trained model" in text


def test_calibration_folder_without_images_exits_2(run_dir, tmp_path, monkeypatch, capsys) -> None:
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "notes.txt").write_text("no images here")
    (calib / "broken.jpg").write_bytes(b"not a jpeg")
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "-f", "tflite",
                         "--calibration", str(calib), "--out", str(tmp_path / "out"))
    assert code == 2 and "holds no readable images" in text
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_unsupported_op_is_named_per_format(tmp_path) -> None:
    import keras

    from edgecls.errors import ModelError
    from edgecls.export.base import ExportSource, QuantizationConfig, get_exporter
    from edgecls.export.metadata import base_metadata

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Reshape((8, 24))(inputs)
    x = keras.layers.Lambda(lambda t: keras.ops.svd(t, compute_uv=False))(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.export(str(tmp_path / "saved"), verbose=False)
    source = ExportSource(model, tmp_path / "saved", base_metadata(["a", "b"], (8, 8), "svd"),
                          tmp_path)
    for fmt, expected in (("tflite", "op tf.Svd is neither"), ("onnx", "on op Svd"),
                          ("openvino", "operations: Svd")):
        target = tmp_path / f"out{fmt}" / "m"
        with pytest.raises(ModelError, match=expected) as error:
            get_exporter(fmt).export(source, QuantizationConfig.for_float32(), target)
        assert fmt.replace("tflite", "TFLite").replace("onnx", "ONNX").replace(
            "openvino", "OpenVINO") in error.value.message
        assert not target.parent.exists() or not any(target.parent.iterdir())


def test_full_disk_leaves_nothing_half_written(run_dir, tmp_path, monkeypatch) -> None:
    from edgecls.atomic import atomic_path
    from edgecls.errors import EdgeclsError
    from edgecls.export import tflite
    from edgecls.export.pipeline import ExportConfig, export_run

    def half_write_then_enospc(path, data: bytes) -> None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tflite, "write_bytes_atomic", half_write_then_enospc)
    out = tmp_path / "out"
    with pytest.raises(EdgeclsError, match="disk full"):
        export_run(run_dir, ExportConfig(out=out, formats=["tflite"], precisions=["fp32"]))
    assert list(out.iterdir()) == []


def test_target_picks_format_and_precision(run_dir, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "--target", "raspberry-pi-4",
                         "--out", str(out))
    assert code == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == "raspberry-pi-4"
    assert [(a["format"], a["precision"]) for a in manifest["artifacts"]] == [("tflite", "int8")]


def test_an_explicit_precision_wins_over_the_target(run_dir, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "--target", "raspberry-pi-4",
                         "--precision", "fp32", "--out", str(out))
    assert code == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(a["format"], a["precision"]) for a in manifest["artifacts"]] == [("tflite", "fp32")]


def test_unknown_target_exits_2(run_dir, tmp_path, monkeypatch, capsys) -> None:
    code, text = run_cli(monkeypatch, capsys, "export", str(run_dir), "--target", "toaster",
                         "--out", str(tmp_path))
    assert code == 2 and "toaster" in text


def test_too_few_held_out_images_warn_and_fail_only_under_strict(run_dir, tmp_path, monkeypatch,
                                                                 capsys) -> None:
    """The tiny run holds out ~24 images: no INT8 verdict can resolve a 1 pp budget."""
    args = ["export", str(run_dir), "-f", "onnx", "-p", "int8", "--no-remedies"]
    code, text = run_cli(monkeypatch, capsys, *args, "--out", str(tmp_path / "a"))
    record = json.loads((tmp_path / "a" / "manifest.json").read_text())["artifacts"][0]
    assert code == 0 and record["verdict"] == "inconclusive" and record["passed"] is True
    said = " ".join(text.split())  # the note wraps at the terminal's width
    assert "INCONCLUSIVE" in text and "would resolve it" in said
    assert f"these images resolve --max-drop {record['smallest_budget_pp']:g} or more" in said
    assert record["images_needed"] > record["images"]
    code, text = run_cli(monkeypatch, capsys, *args, "--strict", "--out", str(tmp_path / "b"))
    assert code == 2 and "too few held-out images" in text and "--strict" in text
