"""Classification metrics in plain numpy: the one place train, the export gate and bench score.

numpy only (no scikit-learn, no TensorFlow), so the same numbers come out on a device.
Conventions follow scikit-learn's ``zero_division=0``: a class never predicted has
precision 0, a class without samples has recall 0.

A class is *far below* the others (``weak_classes``) when its recall is more than
``WEAK_CLASS_GAP_PP`` points below the mean recall (the balanced accuracy) and its 95 %
Wilson interval lies entirely below that mean, so the shortfall is not explained by the
class having few images. A class past the gap whose interval still reaches the mean is
listed apart as ``too_few_images``: a few more right answers would close the gap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgecls.stats import Z95, wilson_interval

_EPS = 1e-7
WEAK_CLASS_GAP_PP = 15.0


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, classes) scores, in the scores' float dtype."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over rows of KL(p || q) for probability rows (clipped, renormalized)."""
    p = np.clip(p.astype(np.float64), _EPS, 1.0)
    q = np.clip(q.astype(np.float64), _EPS, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return matrix


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores per row, best first, shape (N, min(k, C)).

    Ties go to the lower index, so int8 outputs with many equal scores rank the same
    way on every run.
    """
    k = min(k, scores.shape[1])
    descending = -np.asarray(scores, dtype=np.float64)  # negating uint8 would wrap around
    return np.argsort(descending, axis=1, kind="stable")[:, :k]


def top_k_accuracy(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the ``k`` highest scores."""
    if len(y_true) == 0:
        return 0.0
    top = top_k_indices(scores, k)
    return float(np.mean(np.any(top == np.asarray(y_true)[:, None], axis=1)))


def per_class_scores(matrix: np.ndarray, support: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    Args:
        matrix: (C, C) counts, rows true, columns predicted.
        support: samples per true class when some fell outside the matrix (bench's
            predictions outside the data's classes); default: the row sums.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positives = np.diag(matrix)
    support = matrix.sum(axis=1) if support is None else np.asarray(support, dtype=np.float64)
    precision = _safe_divide(true_positives, matrix.sum(axis=0))
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def macro_f1(matrix: np.ndarray, support: np.ndarray | None = None) -> float:
    """Mean F1 over the classes that have samples (0 when none has)."""
    scores = per_class_scores(matrix, support)
    return _mean_over_present(scores["f1"], scores["support"])


def balanced_accuracy(matrix: np.ndarray, support: np.ndarray | None = None) -> float:
    """Mean recall over the classes that have samples (0 when none has)."""
    scores = per_class_scores(matrix, support)
    return _mean_over_present(scores["recall"], scores["support"])


def averages(scores: dict[str, np.ndarray], weighted: bool) -> dict[str, float]:
    """Macro (every class alike) or support-weighted mean precision, recall and F1."""
    support = scores["support"]
    out: dict[str, Any] = {}
    for name in ("precision", "recall", "f1"):
        if not weighted:
            out[name] = float(np.mean(scores[name]))
        else:
            out[name] = float(np.average(scores[name], weights=support)) if support.sum() else 0.0
    out["support"] = int(support.sum())
    return out


def classification_metrics(y_true: np.ndarray, scores: np.ndarray, labels: list[str],
                           top_k: int = 5) -> dict[str, Any]:
    """Accuracy, balanced accuracy, top-k, per-class and averaged precision/recall/F1,
    the classes far below the mean recall (``weak_classes``), confusion matrix.

    Args:
        y_true: (N,) true class indices.
        scores: (N, C) class scores or probabilities.
        labels: C class names in index order.
        top_k: k of the top-k accuracy; with ``top_k >= C`` it would be 1.0 by
            construction, so ``top_k`` is None and no ``top_<k>_accuracy`` is given.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    matrix = confusion_matrix(y_true, np.argmax(scores, axis=1), len(labels))
    per_class = per_class_scores(matrix)
    meaningful = top_k < len(labels)
    return {
        "num_samples": int(len(y_true)),
        "accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
        "top_k": top_k if meaningful else None,
        **({f"top_{top_k}_accuracy": top_k_accuracy(y_true, scores, top_k)} if meaningful else {}),
        "per_class": {
            label: {name: (int(values[i]) if name == "support" else float(values[i]))
                    for name, values in per_class.items()}
            for i, label in enumerate(labels)
        },
        "macro_avg": averages(per_class, weighted=False),
        "weighted_avg": averages(per_class, weighted=True),
        "balanced_accuracy": _mean_over_present(per_class["recall"], per_class["support"]),
        "weak_classes": weak_classes(per_class["recall"], per_class["support"], labels),
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }


def weak_classes(recall: np.ndarray, support: np.ndarray, labels: list[str],
                 gap_pp: float = WEAK_CLASS_GAP_PP, z: float = Z95) -> dict[str, Any]:
    """The classes whose recall is far below the mean recall (see the module docstring).

    Args:
        recall: (C,) recall per class.
        support: (C,) samples per class; classes without any are left out.
        labels: C class names.
        gap_pp: how many percentage points below the mean recall count as far.
        z: normal quantile of the recall intervals (95 % by default).

    Returns:
        ``{"mean_recall", "gap_pp", "far_below": [...], "too_few_images": [...]}``; each
        entry is ``{"label", "recall", "support", "gap_pp", "interval": [low, high]}``,
        largest gap first.
    """
    recall = np.asarray(recall, dtype=np.float64)
    support = np.asarray(support, dtype=np.int64)
    mean = _mean_over_present(recall, support)
    far, uncertain = [], []
    for index in np.argsort(recall, kind="stable"):
        gap = 100.0 * (mean - recall[index])
        if support[index] == 0 or gap <= gap_pp:
            continue
        low, high = wilson_interval(round(recall[index] * support[index]), support[index], z)
        entry = {"label": labels[index], "recall": float(recall[index]), "support": int(support[index]),
                 "gap_pp": round(gap, 4), "interval": [round(low, 6), round(high, 6)]}
        (far if high < mean else uncertain).append(entry)
    return {"mean_recall": mean, "gap_pp": gap_pp, "far_below": far, "too_few_images": uncertain}


def _mean_over_present(values: np.ndarray, support: np.ndarray) -> float:
    present = support > 0
    return float(values[present].mean()) if present.any() else 0.0


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out
