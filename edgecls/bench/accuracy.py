"""Accuracy of one model on labelled images: top-1 (with its 95 % Wilson interval), top-5,
macro F1, per class, confusion.

numpy only (no scikit-learn, no TensorFlow): bench runs on the device. The data's
class folders are matched to the model's labels by name, so a model whose outputs
are a superset (e.g. 1000 ImageNet classes scored on 10 of them) is scored over all
its outputs; predictions outside the data's classes count as wrong and are tallied
in ``confusion_other``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from edgecls import metrics
from edgecls.errors import DataError
from edgecls.stats import wilson_interval

TOP_K = 5


def class_output_indices(
    data_labels: Sequence[str], model_labels: Sequence[str] | None, num_outputs: int
) -> np.ndarray:
    """For each data class, the model output index holding it.

    Labels match exactly or, for ImageNet-style labels such as "tench, Tinca tinca",
    by their first comma-separated name (case-insensitive). A model without labels
    must have exactly one output per data class, taken in sorted folder order.

    Raises:
        DataError: a data class the model does not know.
    """
    if model_labels is None:
        if num_outputs != len(data_labels):
            raise DataError(
                f"the model has {num_outputs} outputs and no labels, the data has "
                f"{len(data_labels)} classes",
                "pass --labels FILE with one class name per model output",
            )
        return np.arange(len(data_labels))
    lookup: dict[str, int] = {}
    for index, label in enumerate(model_labels):
        lookup.setdefault(label.strip().lower(), index)
        lookup.setdefault(label.split(",")[0].strip().lower(), index)
    missing = [name for name in data_labels if name.strip().lower() not in lookup]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(
            f"data classes not among the model's labels: {shown}",
            "class folder names must match the labels the model was trained with",
        )
    return np.asarray([lookup[name.strip().lower()] for name in data_labels])


def accuracy_metrics(
    top_k: np.ndarray, targets: np.ndarray, data_labels: Sequence[str], class_outputs: np.ndarray,
    num_outputs: int | None = None,
) -> dict[str, Any]:
    """Scores top-k predictions against data class indices (keys in SCHEMA.md, ``accuracy``).

    Args:
        top_k: (N, k) model output indices, best first.
        targets: (N,) data class index of each image.
        data_labels: names of the data classes.
        class_outputs: model output index of each data class (``class_output_indices``).
        num_outputs: the model's class count: with ``TOP_K`` or fewer, top-5 would be 1.0
            by construction and ``top5`` is left out (``top_k`` None).
    """
    targets = np.asarray(targets)
    num_classes = len(data_labels)
    true_outputs = class_outputs[targets]
    top1_hit = top_k[:, 0] == true_outputs
    topk_hit = (top_k == true_outputs[:, None]).any(axis=1)
    predicted = _to_data_class(top_k[:, 0], class_outputs)
    inside = predicted >= 0
    confusion = metrics.confusion_matrix(targets[inside], predicted[inside], num_classes)
    other = np.bincount(targets[~inside], minlength=num_classes)
    row_totals = confusion.sum(axis=1) + other
    per_class = metrics.per_class_scores(confusion, support=row_totals)["recall"]
    return {
        "images": int(targets.size),
        "top1": round(float(top1_hit.mean()), 6),
        "top1_interval": [round(v, 6) for v in wilson_interval(int(top1_hit.sum()), targets.size)],
        **({"top5": round(float(topk_hit.mean()), 6)} if _top5_meaningful(num_outputs) else {}),
        "top_k": int(top_k.shape[1]) if _top5_meaningful(num_outputs) else None,
        "macro_f1": round(metrics.macro_f1(confusion, support=row_totals), 6),
        "per_class": {name: round(float(acc), 6) for name, acc in zip(data_labels, per_class)},
        "class_counts": {name: int(n) for name, n in zip(data_labels, row_totals)},
        "confusion_labels": list(data_labels),
        "confusion": confusion.tolist(),
        "confusion_other": other.astype(int).tolist(),
    }


def _top5_meaningful(num_outputs: int | None) -> bool:
    return num_outputs is None or num_outputs > TOP_K


def agreement(predictions: Sequence[str], reference: Sequence[str]) -> float:
    """Fraction of images on which two models give the same top-1 label."""
    if len(predictions) != len(reference) or not predictions:
        raise ValueError("agreement needs two equally long, non-empty prediction lists")
    same = sum(a == b for a, b in zip(predictions, reference))
    return round(same / len(predictions), 6)


def _to_data_class(outputs: np.ndarray, class_outputs: np.ndarray) -> np.ndarray:
    """Data class index of each predicted output, -1 when it is not a data class."""
    lookup = {int(out): index for index, out in enumerate(class_outputs)}
    return np.asarray([lookup.get(int(o), -1) for o in outputs], dtype=np.int64)

