"""The classification loop behind ``edgecls run``: source -> classifier -> sinks.

Per frame: probabilities (lean path of ``Classifier``), optional temporal smoothing,
top-k, a confidence threshold below which the label is "unknown", then every sink.
Ends at the end of the input, after ``max_frames``, when a sink asks to stop, or on
Ctrl+C, SIGTERM or SIGHUP; returns the summary (frames, FPS, latency p50/p95). Memory
stays constant however long it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecls.runtime.classifier import Classifier
from edgecls.live.sinks import Sink, annotate
from edgecls.live.smoothing import ScoreSmoother
from edgecls.live.sources import Frame, FrameSource
from edgecls.live.stopping import StopOnSignals

if TYPE_CHECKING:
    from edgecls.live.collect import Collector

UNKNOWN = "unknown"
SUMMARY_SCHEMA_VERSION = 1


@dataclass
class LoopOptions:
    """How results are formed; ``None`` means no limit / no threshold."""

    top_k: int = 5
    threshold: float = 0.0
    smooth: int = 1
    max_frames: int | None = None


class Stats:
    """Frame count, wall time and latency percentiles of a run, in constant memory.

    Latencies go to a fixed-size uniform reservoir (Vitter's algorithm R): exact
    percentiles while a run has at most ``capacity`` frames, an unbiased sample of the
    whole run after that, so a run of weeks holds the same few kilobytes as a run of
    seconds.
    """

    def __init__(self, capacity: int = 4096, seed: int = 0) -> None:
        self.frames = 0
        self.start = time.perf_counter()
        self.end = self.start
        self._reservoir = np.zeros(capacity, dtype=np.float64)
        self._total_ms = 0.0
        self._rng = np.random.default_rng(seed)

    def add(self, latency_ms: float) -> None:
        capacity = len(self._reservoir)
        if self.frames < capacity:
            self._reservoir[self.frames] = latency_ms
        else:
            slot = int(self._rng.integers(0, self.frames + 1))
            if slot < capacity:
                self._reservoir[slot] = latency_ms
        self.frames += 1
        self._total_ms += latency_ms
        self.end = time.perf_counter()

    @property
    def fps(self) -> float:
        elapsed = self.end - self.start
        return self.frames / elapsed if elapsed > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Frames, FPS and latency percentiles as a JSON-ready dict."""
        sample = self._reservoir[: min(self.frames, len(self._reservoir))]
        lat = sample if len(sample) else np.zeros(1)
        return {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "frames": self.frames,
            "seconds": round(self.end - self.start, 3),
            "fps": round(self.fps, 2),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 3),
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 3),
            "latency_ms_mean": round(self._total_ms / self.frames, 3) if self.frames else 0.0,
        }


def make_result(classifier: Classifier, index: int, probabilities: np.ndarray,
                options: LoopOptions, latency_ms: float) -> dict[str, Any]:
    """The per-frame record: frame, label, score, topk, latency_ms."""
    top = classifier.top(probabilities, options.top_k)
    label, score = top[0]
    if score < options.threshold:
        label = UNKNOWN
    return {
        "frame": index,
        "label": label,
        "score": round(score, 6),
        "topk": [[name, round(value, 6)] for name, value in top],
        "latency_ms": round(latency_ms, 3),
    }


def run_loop(classifier: Classifier, source: FrameSource, sinks: Sequence[Sink],
             options: LoopOptions | None = None,
             on_result: Callable[[dict[str, Any]], None] | None = None,
             collector: Collector | None = None) -> dict[str, Any]:
    """Classifies every frame of ``source`` and hands results to ``sinks``.

    ``collector`` (``--collect``) sees each frame with its probabilities and keeps those
    worth labelling; its summary is the run summary's ``collect``.

    Returns:
        The run summary (see ``Stats.summary``), with ``interrupted`` set on Ctrl+C,
        SIGTERM or SIGHUP (and ``signal`` naming it): these stop the loop cleanly,
        sinks and source are closed either way.
    """
    options = options or LoopOptions()
    smoother = ScoreSmoother(options.smooth, len(classifier.labels))
    annotated = any(s.wants_pixels for s in sinks)
    stats = Stats()
    frames = iter(source)
    interrupted = False
    with StopOnSignals() as stop:
        try:
            while not stop.requested:
                frame = stop.wait_for(next, frames, None)
                if frame is None:
                    break
                result, probabilities = _classify(classifier, smoother, frame, options)
                stats.add(result["latency_ms"])
                if collector is not None:
                    collector.offer(frame, probabilities, result)
                if on_result is not None:
                    on_result(result)
                if not _deliver(sinks, frame.image, result, stats.fps, annotated):
                    break
                if options.max_frames is not None and stats.frames >= options.max_frames:
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            _close(sinks, source)
            if collector is not None:
                collector.close()
    summary = stats.summary()
    if collector is not None:
        summary["collect"] = collector.summary()
    summary["interrupted"] = interrupted or stop.requested
    if stop.received:
        summary["signal"] = stop.received
    return summary


def _classify(classifier: Classifier, smoother: ScoreSmoother, frame: Frame,
              options: LoopOptions) -> tuple[dict[str, Any], np.ndarray]:
    started = time.perf_counter()
    probabilities = smoother.update(classifier.probabilities(frame.image))
    latency_ms = (time.perf_counter() - started) * 1000.0
    result = make_result(classifier, frame.index, probabilities, options, latency_ms)
    if frame.name is not None:
        result["file"] = frame.name
    return result, probabilities


def _close(sinks: Sequence[Sink], source: FrameSource) -> None:
    for sink in sinks:
        sink.close()
    source.close()


def _deliver(sinks: Sequence[Sink], image: np.ndarray, result: dict[str, Any], fps: float,
             annotated: bool) -> bool:
    picture = annotate(image, result, fps) if annotated else image
    keep_going = True
    for sink in sinks:
        keep_going &= sink.write(picture if sink.wants_pixels else image, result, fps)
    return keep_going
