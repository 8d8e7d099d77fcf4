"""Keras callbacks of the fine-tunes after pruning (imported lazily: it loads Keras)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from edgecls.optimize.finetune import top1_accuracy


class KeepBest(keras.callbacks.Callback):
    """Restores at the end of training the model weights with the best top-1 accuracy on
    validation images, among the starting weights and those after every epoch, so a
    fine-tune never hands back a model worse than the one it started from."""

    def __init__(self, model: Any, images: np.ndarray, labels: np.ndarray) -> None:
        super().__init__()
        self.watched, self.images, self.labels = model, images, labels
        self.best_accuracy, self.best_epoch, self.best_weights = -1.0, 0, None
        self.history: list[float] = []

    def on_train_begin(self, logs: Any = None) -> None:
        self._check(0)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        accuracy = self._check(epoch + 1)
        if logs is not None:
            logs["val_top1"] = accuracy

    def on_train_end(self, logs: Any = None) -> None:
        if self.best_weights is not None:
            self.watched.set_weights(self.best_weights)

    def _check(self, epoch: int) -> float:
        accuracy = top1_accuracy(self.watched, self.images, self.labels)
        self.history.append(accuracy)
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = accuracy, epoch
            self.best_weights = self.watched.get_weights()
        return accuracy
