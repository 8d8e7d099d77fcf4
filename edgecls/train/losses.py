"""Training losses: cross-entropy on the model's probabilities, optionally logit-adjusted.

Logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021)
trains against the class imbalance without touching the model: the loss sees the
logits shifted by ``tau * log(prior)``, so frequent classes must win by a margin and
the unshifted model (the one saved and exported) predicts as if the classes were
balanced. Our heads end in a softmax, and ``log(softmax(z)) = z - logsumexp(z)``, so
shifting the log-probabilities is the same as shifting the logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

_LOG_FLOOR = 1e-12  # probabilities below this (float32 underflow) are clipped before log


def class_prior(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Share of each class among ``labels``; a class without images counts as one, so
    its log stays finite."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(float)
    counts = np.maximum(counts, 1.0)
    return counts / counts.sum()


def make_loss(label_smoothing: float, prior: np.ndarray | None = None, tau: float = 1.0) -> Any:
    """The training loss on one-hot labels and softmax outputs.

    Args:
        label_smoothing: label smoothing of the cross-entropy.
        prior: class shares of the training images for logit adjustment; None: plain
            cross-entropy.
        tau: strength of the adjustment (1.0 as in the paper).
    """
    if prior is None:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return LogitAdjustedCrossentropy(prior=[float(p) for p in prior], tau=tau,
                                     label_smoothing=label_smoothing)


@keras.saving.register_keras_serializable(package="edgecls")
class LogitAdjustedCrossentropy(keras.losses.Loss):
    """Cross-entropy of ``softmax(log(p) + tau * log(prior))`` against one-hot labels,
    where ``p`` are the model's softmax probabilities.

    Registered with Keras, so a checkpoint compiled with it loads (and resumes) by name.
    """

    def __init__(self, prior: Sequence[float], tau: float = 1.0, label_smoothing: float = 0.0,
                 name: str = "logit_adjusted_crossentropy", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.prior = [float(p) for p in prior]
        self.tau = float(tau)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        shift = self.tau * np.log(np.asarray(self.prior, dtype=np.float32))
        log_probs = ops.log(ops.clip(y_pred, _LOG_FLOOR, 1.0))
        return keras.losses.categorical_crossentropy(
            y_true, log_probs + ops.convert_to_tensor(shift, dtype=log_probs.dtype),
            from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "prior": self.prior, "tau": self.tau,
                "label_smoothing": self.label_smoothing}
