"""``edgecls run --collect DIR``: keeps the frames worth labelling, on the device.

Strategies, combinable (a frame is kept when any applies):

- low confidence: the top-1 score is under ``below``;
- small margin: top-1 minus top-2 is under ``margin``;
- flicker: the top-1 label differs from the previous frame's while the scene stayed
  still (perceptual hashes within ``STABLE_SCENE_BITS``);
- classes: with the others, only frames whose top-1 (or, for flicker, previous top-1)
  is one of ``classes`` count; alone, every frame with such a top-1 is kept;
- random: each frame with probability ``random``, whatever its scores: the collected set
  stays an unbiased sample of what the device sees (the duplicate filter and the class
  filter do not apply to it; the caps do).

A frame no strategy picks costs a few comparisons; the perceptual hash is computed only
for candidates. Candidates within ``DUPLICATE_BITS`` of a recently kept frame are not
kept again (a still scene is kept once). Rate caps and the storage budget are the
store's (``collect_store``); encoding and writing happen on the writer's thread.
"""

from __future__ import annotations

import random as random_module
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgecls.digest import file_sha256
from edgecls.errors import ConfigError
from edgecls.live.collect_store import CollectStore, StoreLimits, item_stem
from edgecls.live.collect_writer import BackgroundWriter, PendingFrame
from edgecls.live.perceptual_hash import DUPLICATE_BITS, dhash, hamming, nearest_distance
from edgecls.live.sources import Frame

SIDECAR_SCHEMA_VERSION = 1
STABLE_SCENE_BITS = 12  # consecutive frames this close show the same scene (see perceptual_hash)
RECENT_HASHES = 64  # kept frames a candidate is compared with for near-duplicates


@dataclass
class CollectRules:
    """Which frames are worth keeping; ``None`` / ``False`` turns a strategy off."""

    below: float | None = None
    margin: float | None = None
    flicker: bool = False
    classes: Sequence[str] = field(default_factory=tuple)
    random: float | None = None

    def __post_init__(self) -> None:
        for name in ("below", "margin", "random"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"--collect-{name} must be between 0 and 1, got {value}")
        self.classes = tuple(self.classes)

    @property
    def uncertainty(self) -> bool:
        """True when a strategy looks at the scores (not only classes or chance)."""
        return self.below is not None or self.margin is not None or self.flicker

    def with_default(self) -> CollectRules:
        """These rules, or low confidence under 0.5 when no strategy is chosen."""
        if self.uncertainty or self.classes or self.random is not None:
            return self
        return CollectRules(below=0.5)

    def check_classes(self, labels: Sequence[str]) -> None:
        """Refuses class names the model does not have."""
        unknown = [name for name in self.classes if name not in set(labels)]
        if unknown:
            shown = ", ".join(list(labels)[:12]) + (", ..." if len(labels) > 12 else "")
            raise ConfigError(f"--collect-classes: the model has no class {', '.join(map(repr, unknown))}",
                              f"its classes: {shown}")


def parse_classes(text: str | None) -> tuple[str, ...]:
    """'cat, dog' -> ('cat', 'dog')."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


class Collector:
    """Decides, per frame, whether to keep it, and hands kept frames to the writer.

    Args:
        folder: the collection folder (created if missing; continued if not empty).
        rules: the strategies.
        limits: rate caps and storage budget.
        model: the model file, named with its SHA-256 in every sidecar.
        source: a description of the frame source, for the sidecars.
        seed: of the random sample (None: a different sample each run).
        clock: Unix time now (the caps' windows and the file names use it).
    """

    def __init__(self, folder: str | Path, rules: CollectRules, limits: StoreLimits | None = None,
                 model: str | Path | None = None, source: str = "", seed: int | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.rules = rules.with_default()
        self.store = CollectStore(folder, limits)
        self._writer = BackgroundWriter(self.store)
        self._model = {"file": Path(model).name, "sha256": file_sha256(model)} if model else None
        self.source = source
        self._rng = random_module.Random(seed)
        self._clock = clock or time.time
        self._classes = frozenset(self.rules.classes)
        self._recent = deque(self.store.recent_hashes(RECENT_HASHES), maxlen=RECENT_HASHES)
        self._previous: tuple[str, np.ndarray, int | None] | None = None  # label, image, hash
        self.skipped: Counter[str] = Counter()

    def offer(self, frame: Frame, probabilities: np.ndarray, result: dict[str, Any]) -> None:
        """Looks at one classified frame; queues it for writing when a strategy picks it."""
        label, score = result["topk"][0]
        reasons = self._score_reasons(probabilities, result, label, score)
        previous, self._previous = self._previous, (label, frame.image, None)
        changed = self.rules.flicker and previous is not None and previous[0] != label \
            and self._in_classes(label, previous[0])
        if not reasons and not changed:
            return
        now = self._clock()
        if self._blocked(now, counted=bool(reasons)):
            return
        current = dhash(frame.image)
        self._previous = (label, frame.image, current)
        if changed and self._same_scene(previous, current):
            reasons["flicker"] = f"label changed from {previous[0]} to {label} in a still scene"
        if not reasons:
            return
        if "random" not in reasons and nearest_distance(np.array(self._recent, np.uint64), current) \
                <= DUPLICATE_BITS:
            self.skipped["duplicate"] += 1
            return
        self._keep(frame, result, reasons, current, now)

    def _score_reasons(self, probabilities: np.ndarray, result: dict[str, Any], label: str,
                       score: float) -> dict[str, str]:
        rules, reasons = self.rules, {}
        if rules.random is not None and self._rng.random() < rules.random:
            reasons["random"] = f"random sample ({rules.random:g} of frames)"
        if not self._in_classes(label):
            return reasons
        if rules.below is not None and score < rules.below:
            reasons["low_confidence"] = f"top-1 score {score:.3f} under {rules.below:g}"
        if rules.margin is not None:
            gap = score - _second_score(probabilities, result)
            if gap < rules.margin:
                reasons["small_margin"] = f"top-1 minus top-2 {gap:.3f} under {rules.margin:g}"
        if self._classes and not rules.uncertainty:
            reasons["class"] = f"top-1 {label} is a collected class"
        return reasons

    def _in_classes(self, *labels: str) -> bool:
        return not self._classes or any(label in self._classes for label in labels)

    def _blocked(self, now: float, counted: bool) -> bool:
        reason = "storage_full" if self.store.full else None
        if reason is None and (cap := self.store.capped(now)) is not None:
            reason = f"cap_per_{cap}"
        if reason is not None and counted:
            self.skipped[reason] += 1
        return reason is not None

    def _same_scene(self, previous: tuple[str, np.ndarray, int | None], current: int) -> bool:
        _, image, known = previous
        before = known if known is not None else dhash(image)
        return hamming(before, current) <= STABLE_SCENE_BITS

    def _keep(self, frame: Frame, result: dict[str, Any], reasons: dict[str, str], phash: int,
              now: float) -> None:
        stem = item_stem(now, frame.index)
        sidecar = self._sidecar(frame, result, reasons, phash, now, stem)
        # no copy: sources hand out a new array per frame and nothing draws on it in place
        if not self._writer.submit(PendingFrame(stem, frame.image, sidecar)):
            self.skipped["writer_busy"] += 1
            return
        self.store.count_kept(now)
        self._recent.append(phash)

    def _sidecar(self, frame: Frame, result: dict[str, Any], reasons: dict[str, str], phash: int,
                 now: float, stem: str) -> dict[str, Any]:
        sidecar = {
            "schema_version": SIDECAR_SCHEMA_VERSION,
            "image": f"{stem}.jpg",
            "time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
            "source": self.source,
            "frame": frame.index,
            "model": self._model,
            "label": result["label"],
            "topk": result["topk"],
            "reasons": list(reasons),
            "why": "; ".join(reasons.values()),
            "dhash": f"{phash:016x}",
            "size": [int(frame.image.shape[1]), int(frame.image.shape[0])],
        }
        if frame.name is not None:
            sidecar["file"] = frame.name
        return sidecar

    def flush(self) -> None:
        """Waits until the frames kept so far are on the disk."""
        self._writer.flush()

    def close(self) -> None:
        """Writes the frames still queued and ends the writer."""
        self._writer.close()

    def summary(self) -> dict[str, Any]:
        """What this run kept and why, what it skipped, and the folder's state."""
        return {
            "folder": str(self.store.folder),
            "kept": self._writer.written,
            "reasons": dict(self._writer.reasons),
            "skipped": self._skipped_counts(),
            "evicted": self.store.evicted,
            "frames_in_folder": self.store.count,
            "folder_mb": round(self.store.used_bytes / 1e6, 3),
            "stopped": self.store.full,
        }

    def _skipped_counts(self) -> dict[str, int]:
        skipped = Counter(self.skipped)
        skipped["storage_full"] += self._writer.refused  # picked, but the store was full by then
        return {reason: count for reason, count in skipped.items() if count}


def _second_score(probabilities: np.ndarray, result: dict[str, Any]) -> float:
    topk = result["topk"]
    if len(topk) > 1:
        return float(topk[1][1])
    if probabilities.shape[0] < 2:
        return 0.0
    return float(np.partition(probabilities, -2)[-2])
