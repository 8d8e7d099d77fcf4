"""One sign convention in the gate's output: ``+`` is a loss against float, in the table's
drop, the worst-class line and the manifest; version-2 manifests are converted on read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecls.errors import EdgeclsError
from edgecls.export.manifest import ArtifactRecord, Manifest, load_manifest
from edgecls.export.validate import compare


def _record(**extra) -> ArtifactRecord:
    fields = dict(format="tflite", precision="int8", path="model_int8.tflite", size_bytes=1,
                  sha256="0", accuracy=0.9, float_accuracy=0.9055, agreement=0.99, drop_pp=0.55,
                  kl_divergence=0.01, per_class_drop_pp={"ants": 1.1, "bees": 0.0}, passed=True,
                  settings={}, interval_pp=(-1.5, 3.0), right_to_wrong=1, wrong_to_right=0,
                  images=182, worst_class={"name": "ants", "drop_pp": 1.1, "right_to_wrong": 1,
                                           "wrong_to_right": 0, "images": 91})
    return ArtifactRecord(**{**fields, **extra})


def _manifest() -> Manifest:
    return Manifest(run="r", model="m", labels=["ants", "bees"], input_size=(224, 224),
                    max_drop_pp=1.0, held_out_images=182, held_out_by_split={"test": 182},
                    float_accuracy=0.9055, calibration=None, cpu="x", artifacts=[_record()])


def test_a_loss_is_plus_in_the_table_and_the_worst_class_line() -> None:
    from rich.console import Console

    from edgecls.cli.export import _render

    console = Console(record=True, width=120)
    _render(_manifest(), console)
    text = console.export_text()
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
