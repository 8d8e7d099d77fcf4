"""Evaluation metrics against hand-computed values and scikit-learn, and the evaluation
of a run directory (JSON, PNG, text report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgecls.errors import DataError, EdgeclsError
from edgecls.metrics import classification_metrics, confusion_matrix, top_k_accuracy
from edgecls.rundir import RunDir
from edgecls.train.evaluate import format_report
from helpers.images import write_image_folder

# true:      0    0    0    1    1    2      predicted: 0 0 1 1 2 2
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
SCORES = np.array([[0.6, 0.3, 0.1], [0.5, 0.1, 0.4], [0.2, 0.7, 0.1],
                   [0.1, 0.8, 0.1], [0.3, 0.1, 0.6], [0.1, 0.2, 0.7]])
LABELS = ["a", "b", "c"]


def test_confusion_matrix_rows_true_columns_predicted() -> None:
    matrix = confusion_matrix(Y_TRUE, SCORES.argmax(axis=1), 3)
    np.testing.assert_array_equal(matrix, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_metrics_match_hand_computed_values() -> None:
    m = classification_metrics(Y_TRUE, SCORES, LABELS, top_k=2)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["top_2_accuracy"] == pytest.approx(5 / 6)  # sample 4 (true b) misses
    expected = {"a": (1.0, 2 / 3, 0.8, 3), "b": (0.5, 0.5, 0.5, 2), "c": (0.5, 1.0, 2 / 3, 1)}
    for label, (precision, recall, f1, support) in expected.items():
        row = m["per_class"][label]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision, recall, f1))
        assert row["support"] == support
    assert m["macro_avg"]["precision"] == pytest.approx(2 / 3)
    assert m["macro_avg"]["recall"] == pytest.approx(13 / 18)
    assert m["macro_avg"]["f1"] == pytest.approx(59 / 90)
    assert m["weighted_avg"]["precision"] == pytest.approx(0.75)
    assert m["weighted_avg"]["recall"] == pytest.approx(4 / 6)
    assert m["weighted_avg"]["f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    assert m["labels"] == LABELS and m["confusion_matrix"][0] == [2, 1, 0]


def test_never_predicted_class_scores_zero_not_nan() -> None:
    m = classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]), ["x", "y"])
    assert m["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}



def test_top_k_is_left_out_when_k_covers_every_class() -> None:
    """Issue 24: with 2 classes, evaluate printed `top-2 accuracy 1.0000` (true by
    construction); k >= classes gives no top-k at all, in metrics.json and the report."""
    two = classification_metrics(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]), ["x", "y"], top_k=5)
    assert two["top_k"] is None and not any(key.startswith("top_") and key != "top_k" for key in two)
    assert "top-" not in format_report(two)
    three = classification_metrics(Y_TRUE, SCORES, LABELS, top_k=3)
    assert three["top_k"] is None and "top_3_accuracy" not in three


def test_top_k_caps_k_at_the_number_of_classes() -> None:
    assert top_k_accuracy(Y_TRUE, SCORES, 10) == 1.0
    assert top_k_accuracy(Y_TRUE, SCORES, 1) == pytest.approx(4 / 6)


def test_metrics_agree_with_scikit_learn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 5, 300)
    scores = rng.random((300, 5)) + np.eye(5)[y_true] * 0.4
    m = classification_metrics(y_true, scores, list("vwxyz"), top_k=3)
    report = sklearn_metrics.classification_report(y_true, scores.argmax(1), output_dict=True,
                                                   zero_division=0)
    for avg in ("macro avg", "weighted avg"):
        ours = m[avg.replace(" ", "_")]
        assert ours["precision"] == pytest.approx(report[avg]["precision"])
        assert ours["recall"] == pytest.approx(report[avg]["recall"])
        assert ours["f1"] == pytest.approx(report[avg]["f1-score"])
    assert m["top_3_accuracy"] == pytest.approx(
        sklearn_metrics.top_k_accuracy_score(y_true, scores, k=3))
    assert "macro avg" in format_report(m)


@pytest.fixture
def run_with_model(tmp_path: Path) -> RunDir:
    """A run directory with a split and an (untrained) model, as training leaves it."""
    import keras

    from edgecls.data.split import prepare_split

    data = write_image_folder(tmp_path / "images", {"circle_r": 15, "square_g": 15, "circle_b": 15})
    run = RunDir(tmp_path / "run")
    prepare_split(data, run.root)
    image = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(image))
    keras.Model(image, keras.layers.Dense(3, activation="softmax")(pooled)).save(run.best_model)
    return run


def test_evaluate_run_writes_json_png_and_report(run_with_model: RunDir, tmp_path: Path) -> None:
    from edgecls.train.evaluate import evaluate_run

    run = run_with_model
    report = evaluate_run(run.root, "test", json_path=tmp_path / "eval.json")
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved == json.loads(run.metrics.read_text()) == report
    assert {"schema_version", "accuracy", "per_class", "confusion_matrix", "labels",
            "macro_avg", "weighted_avg"} <= set(saved)
    assert saved["top_k"] is None and "top_3_accuracy" not in saved  # 3 classes: top-5 says nothing
    test_count = len(json.loads(run.split.read_text())["subsets"]["test"])
    assert sum(map(sum, saved["confusion_matrix"])) == saved["num_samples"] == test_count
    for png in (tmp_path / "eval.png", run.confusion_png):
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert run.report_txt.read_text().startswith(" ")


def test_evaluate_val_split_leaves_the_test_metrics_alone(run_with_model: RunDir,
                                                          tmp_path: Path) -> None:
    from edgecls.train.evaluate import evaluate_run

    report = evaluate_run(run_with_model.root, "val", json_path=tmp_path / "val.json")
    assert report["split"] == "val" and not run_with_model.metrics.exists()


def test_evaluate_bad_inputs(run_with_model: RunDir, tmp_path: Path) -> None:
    from edgecls.train.evaluate import evaluate_run

    with pytest.raises(EdgeclsError, match="does not exist"):
        evaluate_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeclsError, match="holds no trained model"):
        evaluate_run(tmp_path / "empty")
    with pytest.raises(DataError, match="unknown split 'tset'"):
        evaluate_run(run_with_model.root, "tset")
