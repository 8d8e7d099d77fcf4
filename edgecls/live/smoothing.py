"""Temporal smoothing of class probabilities over the last N frames (``--smooth N``)."""

from __future__ import annotations

import numpy as np


class ScoreSmoother:
    """Moving average of the last ``window`` probability vectors, in a preallocated ring.

    A window of 1 (or less) returns each vector unchanged.
    """

    def __init__(self, window: int, classes: int) -> None:
        self.window = max(1, int(window))
        self._ring = np.zeros((self.window, classes), dtype=np.float64)
        self._sum = np.zeros(classes, dtype=np.float64)
        self._count = 0

    def update(self, probabilities: np.ndarray) -> np.ndarray:
        """Adds one vector; returns the mean of the vectors in the window."""
        if self.window == 1:
            return probabilities
        slot = self._count % self.window
        self._sum -= self._ring[slot]
        self._ring[slot] = probabilities
        self._sum += self._ring[slot]
        self._count += 1
        return (self._sum / min(self._count, self.window)).astype(np.float32)
