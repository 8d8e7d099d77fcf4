"""An artifact tuned on held-out images (accuracy-controlled quantization) is judged on
fewer images than the header's count: the table, the gate's note and the manifest say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecls.export.gate import judge
from edgecls.export.manifest import ArtifactRecord, Manifest
from edgecls.export.predictions import PREDICTIONS_NAME, load_predictions
from helpers.gate import paired_comparison as _pair


@pytest.fixture(scope="module")
def small_run(tiny_runs, tmp_path_factory) -> Path:
    return tiny_runs.copy(tmp_path_factory.mktemp("tuned_rows"), epochs=2)


def _record(path: str, validated: int, tuning: int) -> ArtifactRecord:
    return ArtifactRecord(format="onnx", precision="int8", path=path, size_bytes=1, sha256="0",
                          accuracy=0.9, float_accuracy=0.9, agreement=0.95, drop_pp=0.36,
                          kl_divergence=0.01, per_class_drop_pp={}, passed=True, settings={},
                          verdict="inconclusive", interval_pp=(-1.47, 2.23), right_to_wrong=13,
                          wrong_to_right=11, images=validated, validated_images=validated,
                          tuning_images=tuning, gate_note="")


def _manifest(*extra: ArtifactRecord) -> Manifest:
    return Manifest(run="r", model="m", labels=["a", "b"], input_size=(224, 224), max_drop_pp=0.5,
                    held_out_images=855, held_out_by_split={"val": 435, "test": 420},
                    float_accuracy=0.9, calibration=None, cpu="x",
                    artifacts=[_record("model_int8.tflite", 855, 0), _record("model_int8.onnx", 555, 300),
                               *extra])


def test_gate_note_names_the_images_that_tuned_the_artifact() -> None:
    result = _pair(555, float_wrong=50, right_to_wrong=13, wrong_to_right=11)
    tuned = judge(result, max_drop_pp=0.5, tuning_images=300)
    assert "on 555 held-out images (not on the 300 that tuned its accuracy-controlled" in tuned.note
    assert "tuned" not in judge(result, max_drop_pp=0.5).note


def test_table_marks_the_row_scored_on_fewer_images() -> None:
    from rich.console import Console

    from edgecls.cli.export import _render

    console = Console(record=True, width=100)
    _render(_manifest(), console)
    text = console.export_text()
    assert "on 855 held-out images (435 val + 420 test)" in text
    rows = {line.split()[1]: line for line in text.splitlines() if "model_int8." in line and "│" in line}
    assert "+0.36*" in rows["model_int8.onnx"] and "*" not in rows["model_int8.tflite"]
    assert ("*: model_int8.onnx scored on 555 of the 855 held-out images: the other 300 (val) "
            "tuned its accuracy-controlled quantization") in " ".join(text.split())
    console = Console(record=True, width=100)
    _render(_manifest(_record("model_int8.xml", 555, 300)), console)
    assert ("*: model_int8.onnx, model_int8.xml scored on 555 of the 855 held-out images: the "
            "other 300 (val) tuned their") in " ".join(console.export_text().split())


def test_manifest_counts_validated_and_tuning_images(tmp_path) -> None:
    saved = json.loads(Path(_manifest().save(tmp_path)).read_text())
    assert saved["schema_version"] == 3 and saved["schema_minor"] == 0
    onnx = saved["artifacts"][1]
    assert (onnx["validated_images"], onnx["tuning_images"], onnx["images"]) == (555, 300, 555)


@pytest.mark.parametrize("fmt, method", [("openvino", "accuracy_control")])
def test_preset_asking_for_accuracy_control_first_tunes_on_val_and_is_scored_on_the_rest(
        small_run, tmp_path, fmt, method) -> None:
    from edgecls.export.pipeline import ExportConfig, export_run

    preset = tmp_path / "ac.yaml"
    preset.write_text(f"count: 30\nselection: balanced\nseed: 0\nmethods: {{{fmt}: {method}}}\n")
    manifest = export_run(small_run, ExportConfig(out=tmp_path / "out", formats=[fmt],
                                                 precisions=["int8"], calibration=str(preset),
                                                 remedies=False))
    record = manifest.artifacts[0]
    val = manifest.held_out_by_split["val"]
    assert record.settings["method"] == method
    assert record.tuning_images == val and record.validated_images == record.images
    assert record.validated_images + record.tuning_images == manifest.held_out_images
    assert record.images_by_split == {"test": manifest.held_out_by_split["test"]}
    assert f"not on the {val} that tuned" in record.gate_note
    stored = load_predictions(tmp_path / "out" / PREDICTIONS_NAME).for_artifact(tmp_path / "out" / record.path)
    assert int(stored.compared.sum()) == record.validated_images
