"""Balanced accuracy and the classes far below the mean recall, on constructed
predictions whose answer is known; schema-1 reports still read; `edgecls evaluate`
prints and stores them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.errors import DataError
from edgecls.metrics import classification_metrics
from edgecls.stats import wilson_interval
from edgecls.train.evaluate import EVAL_SCHEMA_VERSION, format_report, read_report

runner = CliRunner()


def predictions(counts: dict[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(y_true, one-hot scores, labels) where class i has ``counts[i] = (images, right)``
    and its wrong predictions go to the next class."""
    labels = list(counts)
    y_true, y_pred = [], []
    for index, (images, right) in enumerate(counts.values()):
        y_true += [index] * images
        y_pred += [index] * right + [(index + 1) % len(labels)] * (images - right)
    return np.array(y_true), np.eye(len(labels))[y_pred], labels


def test_balanced_accuracy_is_the_mean_recall() -> None:
    y_true, scores, labels = predictions({"a": (100, 90), "b": (10, 5), "c": (30, 30)})
    metrics = classification_metrics(y_true, scores, labels)
    assert metrics["accuracy"] == pytest.approx(125 / 140)
    assert metrics["balanced_accuracy"] == pytest.approx((0.9 + 0.5 + 1.0) / 3)


def test_balanced_accuracy_agrees_with_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y_true = rng.choice(4, 500, p=[0.6, 0.25, 0.1, 0.05])
    scores = rng.random((500, 4)) + np.eye(4)[y_true] * 0.5
    metrics = classification_metrics(y_true, scores, list("wxyz"))
    assert metrics["balanced_accuracy"] == pytest.approx(
        sklearn_metrics.balanced_accuracy_score(y_true, scores.argmax(1)))


def test_a_well_sampled_class_far_below_the_mean_is_named() -> None:
    y_true, scores, labels = predictions({"a": (100, 95), "b": (100, 92), "c": (100, 90),
                                          "trash": (40, 16), "d": (100, 70)})
    weak = classification_metrics(y_true, scores, labels)["weak_classes"]
    mean = (0.95 + 0.92 + 0.9 + 0.4 + 0.7) / 5
    assert weak["mean_recall"] == pytest.approx(mean)
    assert [entry["label"] for entry in weak["far_below"]] == ["trash"]  # d: 0.70 is 7 points below
    entry = weak["far_below"][0]
    assert (entry["recall"], entry["support"]) == (0.4, 40)
    assert entry["gap_pp"] == pytest.approx(100 * (mean - 0.4), abs=1e-3)
    assert entry["interval"] == pytest.approx(list(wilson_interval(16, 40)), abs=1e-6)
    assert entry["interval"][1] < mean
    assert weak["too_few_images"] == []


def test_a_gap_a_handful_of_images_explains_is_not_called_far() -> None:
    # 1 of 3 right: 44 points below the mean, but its 95 % interval (0.06-0.79) reaches it.
    y_true, scores, labels = predictions({"a": (100, 95), "b": (100, 92), "c": (100, 90),
                                          "rare": (3, 1)})
    weak = classification_metrics(y_true, scores, labels)["weak_classes"]
    assert weak["far_below"] == []
    assert [entry["label"] for entry in weak["too_few_images"]] == ["rare"]
    low, high = weak["too_few_images"][0]["interval"]
    assert low < weak["mean_recall"] < high


def test_largest_gap_first_and_classes_without_images_left_out() -> None:
    y_true, scores, labels = predictions({"a": (200, 198), "b": (200, 90), "c": (200, 20),
                                          "d": (200, 196)})
    labels.append("empty")
    scores = np.hstack([scores, np.zeros((len(scores), 1))])
    metrics = classification_metrics(y_true, scores, labels)
    assert metrics["balanced_accuracy"] == pytest.approx((0.99 + 0.45 + 0.1 + 0.98) / 4)
    assert [entry["label"] for entry in metrics["weak_classes"]["far_below"]] == ["c", "b"]


def test_no_weak_class_when_recalls_are_close() -> None:
    y_true, scores, labels = predictions({"a": (50, 45), "b": (50, 40), "c": (50, 48)})
    weak = classification_metrics(y_true, scores, labels)["weak_classes"]
    assert weak["far_below"] == weak["too_few_images"] == []
    assert "far below" not in format_report(classification_metrics(y_true, scores, labels))


def test_text_report_names_the_weak_class() -> None:
    y_true, scores, labels = predictions({"a": (100, 95), "b": (100, 92), "trash": (40, 16)})
    text = format_report(classification_metrics(y_true, scores, labels))
    assert "balanced acc" in text
    far = [line for line in text.splitlines() if line.startswith("far below")]
    assert len(far) == 1 and "trash 0.400 (40 images" in far[0]


def test_schema_1_reports_read_as_schema_2(tmp_path: Path) -> None:
    y_true, scores, labels = predictions({"a": (100, 95), "b": (100, 92), "trash": (40, 16)})
    current = {"schema_version": EVAL_SCHEMA_VERSION, **classification_metrics(y_true, scores, labels)}
    old = {k: v for k, v in current.items() if k not in ("balanced_accuracy", "weak_classes")}
    (tmp_path / "v1.json").write_text(json.dumps({**old, "schema_version": 1}))
    assert EVAL_SCHEMA_VERSION == 2
    assert read_report(tmp_path / "v1.json") == json.loads(json.dumps(current))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(DataError, match="not a readable evaluation report"):
        read_report(tmp_path / "bad.json")


def test_evaluate_cli_prints_and_stores_balanced_accuracy(tmp_path: Path) -> None:
    """A run whose model always answers the first class: recall 1, 0, 0."""
    import keras

    from edgecls.data.split import prepare_split
    from edgecls.rundir import RunDir
    from helpers.images import write_image_folder

    data = write_image_folder(tmp_path / "images", {"a": 30, "b": 30, "c": 30})
    run = RunDir(tmp_path / "run")
    prepare_split(data, run.root)
    image = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    first_class = keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros",
                                     bias_initializer=keras.initializers.Constant([5.0, 0.0, 0.0]))
    keras.Model(image, first_class(pooled)).save(run.best_model)
    result = runner.invoke(app, ["evaluate", str(run.root), "--json", str(tmp_path / "eval.json"),
                                 "--gallery", "0"])
    assert result.exit_code == 0, result.output
    assert "balanced accuracy 0.3333" in result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["schema_version"] == 2 and report["balanced_accuracy"] == pytest.approx(1 / 3)
    weak = report["weak_classes"]
    assert {e["label"] for e in weak["far_below"] + weak["too_few_images"]} == {"b", "c"}
    assert "b 0.000" in result.output and "c 0.000" in result.output
