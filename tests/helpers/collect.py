"""A synthetic classified frame stream with known scores, for ``--collect`` tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from edgecls.live.collect import Collector
from edgecls.live.sources import Frame

LABELS = ["cat", "dog", "fox"]


def scene(seed: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A random BGR picture: two different seeds give far-apart perceptual hashes."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return np.kron(coarse, np.ones((size[0] // 6, size[1] // 8, 1), np.uint8))


def shot(base: np.ndarray, seed: int, noise: float = 4.0) -> np.ndarray:
    """Another camera frame of the same still scene: ``base`` plus sensor noise."""
    rng = np.random.default_rng(seed)
    return np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8)


def classified(index: int, image: np.ndarray, scores: Iterable[float]) -> tuple[Frame, np.ndarray, dict]:
    """One frame, its probabilities and the loop's per-frame record (top-3, best first)."""
    probabilities = np.asarray(list(scores), np.float32)
    order = np.argsort(probabilities)[::-1]
    topk = [[LABELS[i], round(float(probabilities[i]), 6)] for i in order]
    result = {"frame": index, "label": topk[0][0], "score": topk[0][1], "topk": topk, "latency_ms": 1.0}
    return Frame(index, image, 0.0), probabilities, result


def feed(collector: Collector, stream: Iterable[tuple[np.ndarray, Iterable[float]]],
         clock: Clock | None = None, step_s: float = 1.0, wait: bool = True) -> dict:
    """Offers every (image, scores) of ``stream`` in order (``clock`` advancing ``step_s``
    before each, and, with ``wait``, each kept frame written before the next, as a camera
    slower than the disk would), closes the collector, returns its summary."""
    for index, (image, scores) in enumerate(stream):
        if clock is not None:
            clock.now += step_s
        collector.offer(*classified(index, image, scores))
        if wait:
            collector.flush()
    collector.close()
    return collector.summary()


def kept_frames(folder: Path) -> list[int]:
    """Frame numbers of the items in ``folder``, oldest first."""
    return [int(p.stem.rsplit("-f", 1)[1]) for p in sorted(folder.glob("*.json"))]


class Clock:
    """A settable Unix time for the rate caps' windows."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
