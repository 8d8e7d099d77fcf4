"""One sign convention in the gate's output and the bench report: ``+`` is a loss against
float, in the table's drop, the worst-class line, the manifest and the report's columns;
version-2 manifests are converted on read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecls.bench.columns import cells, headers
from edgecls.bench.report import merge_records
from edgecls.errors import EdgeclsError
from edgecls.export.gate import judge
from edgecls.export.manifest import ArtifactRecord, Manifest, load_manifest
from edgecls.export.validate import compare

CLASSES = ["ants", "bees"]


def _record(**extra) -> ArtifactRecord:
    fields = dict(format="tflite", precision="int8", path="model_int8.tflite", size_bytes=1,
                  sha256="0", accuracy=0.9, float_accuracy=0.9055, agreement=0.99, drop_pp=0.55,
                  kl_divergence=0.01, per_class_drop_pp={"ants": 1.1, "bees": 0.0}, passed=True,
                  settings={}, interval_pp=(-1.5, 3.0), right_to_wrong=1, wrong_to_right=0,
                  images=182, worst_class={"name": "ants", "drop_pp": 1.1, "right_to_wrong": 1,
                                           "wrong_to_right": 0, "images": 91})
    return ArtifactRecord(**{**fields, **extra})


def _manifest(record: ArtifactRecord | None = None) -> Manifest:
    return Manifest(run="r", model="m", labels=CLASSES, input_size=(224, 224),
                    max_drop_pp=1.0, held_out_images=182, held_out_by_split={"test": 182},
                    float_accuracy=0.9055, calibration=None, cpu="x", artifacts=[record or _record()])


def _gate_text(manifest: Manifest) -> str:
    from rich.console import Console

    from edgecls.cli.export import _render

    console = Console(record=True, width=160)
    _render(manifest, console)
    return console.export_text()


def test_a_loss_is_plus_in_the_table_and_the_worst_class_line() -> None:
    text = _gate_text(_manifest())
    assert "+0.55" in text and "worst class ants +1.1 pp" in text


def test_compare_gives_per_class_drops_with_a_loss_positive() -> None:
    labels = np.array([0, 0, 1, 1])
    float_probs = np.eye(2)[[0, 0, 1, 1]]
    probs = np.eye(2)[[1, 0, 1, 1]]  # one ants image turned wrong
    result = compare(probs, float_probs, labels, ["ants", "bees"])
    assert result.per_class_drop_pp == {"ants": 50.0, "bees": 0.0} and result.drop_pp == 25.0


def test_manifest_round_trips_at_version_3(tmp_path: Path) -> None:
    saved = json.loads(_manifest().save(tmp_path).read_text())
    assert saved["schema_version"] == 3 and "per_class_change" not in saved["artifacts"][0]
    assert load_manifest(tmp_path / "manifest.json") == _manifest()


def test_a_version_2_manifest_is_converted_on_read(tmp_path: Path) -> None:
    data = json.loads(_manifest().to_json())
    data.update(schema_version=2, schema_minor=1)
    artifact = data["artifacts"][0]
    del artifact["per_class_drop_pp"]
    artifact["per_class_change"] = {"ants": -1.1, "bees": 0.0}  # version 2: + was a gain
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    loaded = load_manifest(tmp_path / "manifest.json")
    assert loaded.artifacts[0].per_class_drop_pp == {"ants": 1.1, "bees": 0.0}
    assert loaded.schema_version == 3 and loaded == _manifest()


@pytest.mark.parametrize("text, message", [("{not json", "cannot read"),
                                           ('{"schema_version": 1}', "schema_version 1")])
def test_unreadable_manifests_are_user_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(EdgeclsError, match=message):
        load_manifest(tmp_path / "manifest.json")


def _bench_record(precision: str, correct: np.ndarray, labels: np.ndarray) -> dict:
    """A bench record of one model's top-1 hits on the images of ``labels``."""
    per_class = {name: float(np.mean(correct[labels == k])) for k, name in enumerate(CLASSES)}
    return {"file": f"model_{precision}.tflite", "format": "tflite", "precision": precision,
            "model_name": "m", "run": "r", "labels": CLASSES, "status": "passed", "size_bytes": 1,
            "accuracy": {"top1": float(np.mean(correct)), "images": len(labels), "per_class": per_class,
                         "class_counts": {name: int(np.sum(labels == k)) for k, name in enumerate(CLASSES)},
                         "correct_bits": np.packbits(correct).tobytes().hex()}}


def test_one_artifact_has_the_same_sign_in_the_gate_the_manifest_and_the_bench_report(tmp_path: Path) -> None:
    """An INT8 model that turns 3 right ants wrong and 1 wrong bee right: a loss, ``+``, everywhere."""
    labels = np.repeat([0, 1], 40)
    float_pred = labels.copy()
    float_pred[[40, 41]] = 0  # the float model misses two bees
    pred = float_pred.copy()
    pred[[0, 1, 2]], pred[40] = 1, 1
    result = compare(np.eye(2)[pred], np.eye(2)[float_pred], labels, CLASSES)
    gate = judge(result, max_drop_pp=1.0)
    name, worst = gate.worst_class
    record = _record(accuracy=result.accuracy, float_accuracy=result.float_accuracy, drop_pp=round(result.drop_pp, 4),
                     per_class_drop_pp=result.per_class_drop_pp, interval_pp=(gate.drop.low_pp, gate.drop.high_pp),
                     right_to_wrong=3, wrong_to_right=1, images=80, worst_class={"name": name, **worst.to_dict()})
    drop, low, high = result.drop_pp, gate.drop.low_pp, gate.drop.high_pp
    assert drop == pytest.approx(2.5) and name == "ants"  # 2 images of 80 lost net, 3 of 40 ants

    gate_text = _gate_text(_manifest(record))
    assert f"{drop:+.2f}" in gate_text and "worst class ants +7.5 pp" in gate_text
    saved = json.loads(_manifest(record).save(tmp_path).read_text())["artifacts"][0]
    assert saved["drop_pp"] == pytest.approx(2.5) and saved["per_class_drop_pp"]["ants"] == 7.5

    report = {"machine": {"cpu_model": "x"}, "records": [_bench_record("fp32", float_pred == labels, labels),
                                                          _bench_record("int8", pred == labels, labels)]}
    int8 = next(row for row in merge_records([report]).rows if row.record["precision"] == "int8")
    bench = dict(zip(headers(), cells(int8)))
    assert bench["drop vs float"] == f"{drop:+.2f}pp" == "+2.50pp"
    assert bench["drop vs float 95%"] == f"[{low:+.2f}, {high:+.2f}]pp"
    assert bench["worst class"] == "ants +7.5pp (+3)"
