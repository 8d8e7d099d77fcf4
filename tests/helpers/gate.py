"""Constructed float/artifact predictions with exact paired counts, for gate tests."""

from __future__ import annotations

import numpy as np

from edgecls.export.validate import compare

CLASSES = ["cat", "dog", "fox", "owl"]


def one_hot_probs(predicted: np.ndarray, classes: int = len(CLASSES)) -> np.ndarray:
    """Probabilities with 0.9 on each predicted class."""
    probs = np.full((len(predicted), classes), 0.1 / (classes - 1), np.float32)
    probs[np.arange(len(predicted)), predicted] = 0.9
    return probs


def paired_comparison(n: int, float_wrong: int, right_to_wrong: int, wrong_to_right: int,
                      seed: int = 0, only_class: int | None = None):
    """Labels, float and artifact probabilities with exactly these paired counts,
    the changed images spread at random (or within one class)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    float_pred, art_pred = labels.copy(), labels.copy()
    pool = np.flatnonzero(labels == only_class) if only_class is not None else np.arange(n)
    order = rng.permutation(pool)
    wrong = order[:float_wrong]
    lost = order[float_wrong:float_wrong + right_to_wrong]
    gained = wrong[:wrong_to_right]
    float_pred[wrong] = (labels[wrong] + 1) % len(CLASSES)
    art_pred[wrong] = float_pred[wrong]
    art_pred[gained] = labels[gained]
    art_pred[lost] = (labels[lost] + 2) % len(CLASSES)
    splits = np.where(np.arange(n) < n // 2, "val", "test")
    return compare(one_hot_probs(art_pred), one_hot_probs(float_pred), labels, CLASSES, splits)


def two_class_validation(images: int, lost: int, gained: int):
    """A float/artifact comparison on ``images`` images, half of them wrong under float,
    where the artifact turns ``lost`` right predictions wrong and ``gained`` wrong ones right."""
    labels = np.zeros(images, int)
    float_pred = np.where(np.arange(images) % 2 == 0, 0, 1)
    pred = float_pred.copy()
    pred[np.flatnonzero(float_pred == 0)[:lost]] = 1
    pred[np.flatnonzero(float_pred == 1)[:gained]] = 0
    return compare(np.eye(2)[pred], np.eye(2)[float_pred], labels, ["a", "b"])
