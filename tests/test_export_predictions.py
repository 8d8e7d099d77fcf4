"""predictions.json: the export's per-image top-1, reused by the changes page (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecls.explain.changes import changed_top1, quantization_changes, top1_changes
from edgecls.export.predictions import PREDICTIONS_NAME, HeldOutPredictions, load_predictions
from edgecls.export.validate import artifact_probabilities
from helpers.images import black_image_folder


def _constructed(tmp_path: Path) -> tuple[HeldOutPredictions, Path]:
    items = [(tmp_path / "data" / c / f"{i}.png", label) for i, (c, label) in
             enumerate([("a", 0), ("b", 1), ("a", 0), ("b", 1)])]
    float_probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    predictions = HeldOutPredictions.from_float(tmp_path / "data", items, ["val", "val", "test", "test"],
                                                ["a", "b"], float_probs)
    artifact = tmp_path / "model_int8.onnx"
    artifact.write_bytes(b"artifact bytes")
    from edgecls.digest import file_sha256
    compared = np.array([False, True, True, True])  # image 0 tuned an accuracy-controlled remedy
    predictions.add(artifact.name, file_sha256(artifact), compared, np.array([0, 1, 1]),
                    np.array([0.45, 0.3, 0.9]))
    return predictions, artifact


def test_round_trip_keeps_uncompared_images_as_null(tmp_path) -> None:
    predictions, artifact = _constructed(tmp_path)
    text = predictions.to_json()
    data = json.loads(text)
    assert data["schema_version"] == 1 and data["paths"] == ["a/0.png", "b/1.png", "a/2.png", "b/3.png"]
    assert data["artifacts"]["model_int8.onnx"]["top1"] == [None, 0, 1, 1]
    assert data["float"]["top1"] == [0, 1, 0, 1]
    back = HeldOutPredictions.from_json(text)
    stored = back.for_artifact(artifact)
    assert stored is not None and stored.compared.tolist() == [False, True, True, True]
    assert np.isnan(stored.float_top1_probability[0]) and stored.float_top1_probability[2] == 0.3


def test_stored_predictions_are_refused_for_other_bytes_or_images(tmp_path) -> None:
    predictions, artifact = _constructed(tmp_path)
    (tmp_path / PREDICTIONS_NAME).write_text(predictions.to_json())
    loaded = load_predictions(tmp_path / PREDICTIONS_NAME)
    assert loaded is not None and loaded.for_artifact(artifact) is not None
    artifact.write_bytes(b"re-exported")  # same name, other bytes
    assert loaded.for_artifact(artifact) is None
    root = tmp_path / "data"
    items = [(root / p, int(label)) for p, label in zip(loaded.paths, loaded.labels)]
    assert loaded.same_images(root, items)
    assert not loaded.same_images(root, items[:-1])
    assert not loaded.same_images(root, items[:-1] + [(root / "b/4.png", 1)])
    (tmp_path / "bad.json").write_text('{"schema_version": 99}')
    assert load_predictions(tmp_path / "bad.json") is None and load_predictions(tmp_path / "none") is None


def test_changes_from_top1_alone_match_changes_from_probabilities() -> None:
    rng = np.random.default_rng(0)
    float_probs, int8_probs = rng.dirichlet(np.ones(5), 200), rng.dirichlet(np.ones(5), 200)
    float_top1 = float_probs.argmax(1)
    rows = np.arange(200)
    from_top1 = top1_changes(float_top1, float_probs[rows, float_top1], int8_probs.argmax(1),
                             int8_probs[rows, float_top1])
    assert from_top1.changed.tolist() == changed_top1(float_probs, int8_probs).tolist()
    top1 = int8_probs.argmax(1)
    top1[:50] = -1  # not compared: never a change
    partial = top1_changes(float_top1, float_probs[rows, float_top1], top1, int8_probs[rows, float_top1])
    assert partial.compared == 150 and partial.changed.min() >= 50


def test_transaction_publishes_predictions_with_the_manifest(tmp_path) -> None:
    from edgecls.export.manifest import Manifest
    from edgecls.export.publish import export_transaction

    out = tmp_path / "out"
    with export_transaction(out) as transaction:
        transaction.add_text(PREDICTIONS_NAME, "{}\n")
        assert not (out / PREDICTIONS_NAME).exists()  # staged, not published yet
        transaction.commit(Manifest(run="r", model="m", labels=["a"], input_size=(8, 8), max_drop_pp=1,
                                    held_out_images=0, held_out_by_split={}, float_accuracy=0,
                                    calibration=None, cpu="x"))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", PREDICTIONS_NAME]


@pytest.fixture(scope="module")
def exported(tiny_runs, tmp_path_factory) -> tuple[Path, Path]:
    from edgecls.export.pipeline import ExportConfig, export_run

    root = tmp_path_factory.mktemp("predictions")
    run = tiny_runs.copy(root, epochs=2)
    black = str(black_image_folder(root / "black"))  # calibrated on black: INT8 changes top-1
    export_run(run, ExportConfig(out=root / "out", formats=["onnx"], precisions=["fp32", "int8"],
                                 calibration=black, remedies=False, max_drop=100))
    return run, root / "out"


def test_export_writes_the_predictions_it_validated(exported) -> None:
    run, out = exported
    manifest = json.loads((out / "manifest.json").read_text())
    predictions = load_predictions(out / PREDICTIONS_NAME)
    assert predictions is not None and len(predictions.paths) == manifest["held_out_images"]
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split

    split = Split.load(run / "split.json")
    items = split.items("val") + split.items("test")
    assert predictions.same_images(split.root, items)
    images, _ = load_arrays(items, tuple(manifest["input_size"]))
    for record in manifest["artifacts"]:
        stored = predictions.for_artifact(out / record["path"])
        assert stored is not None and stored.compared.all()
        probs, _ = artifact_probabilities(out / record["path"], images)
        assert stored.top1.tolist() == probs.argmax(1).tolist()  # what validation saw
        agreeing = int(np.sum(stored.top1 == predictions.float_top1))
        assert agreeing == round(record["agreement"] * record["images"])


def test_changes_page_reuses_the_export_predictions(exported) -> None:
    run, out = exported
    artifacts = [out / "model_fp32.onnx", out / "model_int8.onnx"]
    reused = quantization_changes(run, artifacts, shown=2)
    rerun = quantization_changes(run, artifacts, shown=2, reuse=False)
    assert [c.from_export for c in reused] == [True, True]
    assert [c.from_export for c in rerun] == [False, False]
    assert [(c.total, c.changed) for c in reused] == [(c.total, c.changed) for c in rerun]
    assert rerun[0].changed == 0 and rerun[1].changed >= 2
    shown = [[(r.path, r.top1, r.compared_top1) for r in c.results] for c in reused]
    assert shown == [[(r.path, r.top1, r.compared_top1) for r in c.results] for c in rerun]
    data = json.loads((out / PREDICTIONS_NAME).read_text())
    data["artifacts"]["model_int8.onnx"]["sha256"] = "0" * 64  # not these bytes: recompute
    (out / PREDICTIONS_NAME).write_text(json.dumps(data))
    again = quantization_changes(run, artifacts, shown=0)
    assert [c.from_export for c in again] == [True, False]
    assert again[1].changed == rerun[1].changed
