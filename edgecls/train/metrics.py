"""Classification metrics in plain numpy (no scikit-learn at run time)."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return matrix


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the ``k`` highest scores."""
    if len(y_true) == 0:
        return 0.0
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(y_true)[:, None], axis=1)))


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A class never predicted has precision 0; a class with no samples has recall 0
    (the scikit-learn ``zero_division=0`` convention).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positives = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = _safe_divide(true_positives, predicted)
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, labels: list[str],
                           top_k: int = 5) -> dict[str, Any]:
    """Accuracy, top-k, per-class and averaged precision/recall/F1, confusion matrix.

    Args:
        y_true: (N,) true class indices.
        scores: (N, C) class scores or probabilities.
        labels: C class names in index order.
        top_k: k of the top-k accuracy (capped at C).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.argmax(scores, axis=1)
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    scores_per_class = per_class_scores(matrix)
    support = scores_per_class["support"]
    k = min(top_k, len(labels))
    result: dict[str, Any] = {
        "num_samples": int(len(y_true)),
        "accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
        "top_k": k,
        f"top_{k}_accuracy": top_k_accuracy(y_true, scores, k),
        "per_class": {
            label: {name: (int(values[i]) if name == "support" else float(values[i]))
                    for name, values in scores_per_class.items()}
            for i, label in enumerate(labels)
        },
        "macro_avg": _average(scores_per_class, weights=None),
        "weighted_avg": _average(scores_per_class, weights=support),
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }
    return result


def _average(scores: dict[str, np.ndarray], weights: np.ndarray | None) -> dict[str, float]:
    out = {}
    for name in ("precision", "recall", "f1"):
        if weights is None:
            out[name] = float(np.mean(scores[name]))
        else:
            out[name] = float(np.average(scores[name], weights=weights)) if weights.sum() else 0.0
    out["support"] = int(scores["support"].sum())
    return out


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def format_report(metrics: dict[str, Any]) -> str:
    """A text table like scikit-learn's ``classification_report``."""
    labels = metrics["labels"]
    width = max([len(label) for label in labels] + [len("weighted avg")])
    lines = [f"{'':>{width}}  precision    recall  f1-score   support", ""]
    for label in labels:
        lines.append(_report_line(label, metrics["per_class"][label], width))
    lines.append("")
    total = metrics["num_samples"]
    lines.append(f"{'accuracy':>{width}}  {'':>9}  {'':>8}  {metrics['accuracy']:8.4f}  {total:8d}")
    k = metrics["top_k"]
    lines.append(f"{f'top-{k} acc':>{width}}  {'':>9}  {'':>8}  "
                 f"{metrics[f'top_{k}_accuracy']:8.4f}  {total:8d}")
    lines.append(_report_line("macro avg", metrics["macro_avg"], width))
    lines.append(_report_line("weighted avg", metrics["weighted_avg"], width))
    return "\n".join(lines) + "\n"


def _report_line(name: str, row: dict[str, Any], width: int) -> str:
    return (f"{name:>{width}}  {row['precision']:9.4f}  {row['recall']:8.4f}  "
            f"{row['f1']:8.4f}  {row['support']:8d}")
