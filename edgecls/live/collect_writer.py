"""Encodes and writes kept frames on a thread of its own, so the frame loop never waits on
JPEG encoding or a slow SD card. The queue is short: when the writer falls behind, new
frames are dropped (and counted), never the loop slowed."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edgecls.live.collect_store import CollectStore
from edgecls.live.server import lower_thread_priority

log = logging.getLogger(__name__)

JPEG_QUALITY = 90


@dataclass
class PendingFrame:
    """A kept frame on its way to the disk."""

    stem: str
    image: np.ndarray
    sidecar: dict[str, Any]


class BackgroundWriter:
    """A thread writing ``PendingFrame``s into a ``CollectStore``.

    Args:
        store: where frames go.
        capacity: frames waiting at most; more are refused by ``submit``.
    """

    def __init__(self, store: CollectStore, capacity: int = 8) -> None:
        self.store = store
        self.written = 0
        self.refused = 0  # the store was full when the frame arrived
        self.reasons: Counter[str] = Counter()  # of the frames written
        self._queue: queue.Queue[PendingFrame | None] = queue.Queue(maxsize=capacity)
        self._params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        self._thread = threading.Thread(target=self._run, name="edgecls-collect-write", daemon=True)
        self._thread.start()

    def submit(self, frame: PendingFrame) -> bool:
        """Queues a frame; False when the queue is full (the frame is dropped)."""
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            return False
        return True

    def flush(self) -> None:
        """Waits until every queued frame is written (or refused)."""
        self._queue.join()

    def close(self, timeout_s: float = 30.0) -> None:
        """Writes what is queued, then ends the thread (waits at most ``timeout_s``)."""
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        lower_thread_priority()
        while (frame := self._queue.get()) is not None:
            try:
                self._write(frame)
            except OSError as exc:
                self.store.fail(exc)
                self.refused += 1
            except cv2.error as exc:  # one frame OpenCV cannot encode must not end collecting
                log.warning("collect: frame %s not kept (%s)", frame.stem, exc)
            finally:
                self._queue.task_done()

    def _write(self, frame: PendingFrame) -> None:
        if self.store.full:
            self.refused += 1
            return
        ok, jpeg = cv2.imencode(".jpg", frame.image, self._params)
        if not ok:
            raise cv2.error(f"JPEG encoding of a {frame.image.shape} frame failed")
        sidecar = (json.dumps(frame.sidecar) + "\n").encode("utf-8")
        if self.store.save(frame.stem, jpeg.tobytes(), sidecar):
            self.written += 1
            self.reasons.update(frame.sidecar["reasons"])
        else:
            self.refused += 1
