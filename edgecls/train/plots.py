"""Confusion-matrix figure (matplotlib, headless Agg backend)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from edgecls.atomic import write_bytes_atomic


def save_confusion_png(matrix: np.ndarray | list, labels: list[str], path: str | Path,
                       title: str = "Confusion matrix") -> None:
    """Writes a row-normalized confusion matrix with counts in the cells, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape, float), where=rows > 0)
    side = max(4.0, 0.6 * len(labels) + 2.0)
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    try:
        ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xlabel="predicted",
               ylabel="true", title=title)
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_yticklabels(labels)
        if len(labels) <= 30:
            for (i, j), count in np.ndenumerate(counts):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
