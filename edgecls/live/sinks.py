"""Where results go: JSON lines, an annotated video file, a window, an MJPEG stream.

Each sink has ``write(frame, result, fps) -> bool`` (False asks the loop to stop,
e.g. 'q' pressed in the window) and ``close()``. Sinks that show pixels draw the
label, score and FPS on the frame (``annotate``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from edgecls.errors import ConfigError, SourceError
from edgecls.live.serve_auth import StreamAuth
from edgecls.live.server import (
    ServerLimits,
    StreamServer,
    frame_part,
    lower_thread_priority,
)

_log = logging.getLogger(__name__)


class Sink:
    """Base class: receives every frame and its result."""

    wants_pixels = False  # True: the loop annotates the frame before calling write

    def write(self, image: np.ndarray, result: dict[str, Any], fps: float) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Flushes and releases."""


def annotate(image: np.ndarray, result: dict[str, Any], fps: float) -> np.ndarray:
    """Draws 'label score' and the FPS on a copy of the frame."""
    out = image.copy()
    scale = max(0.5, out.shape[1] / 900)
    thickness = max(1, int(round(scale * 2)))
    lines = [(f"{result['label']} {result['score']:.2f}", 1.0)] if "label" in result else []
    for line, y in (*lines, (f"{fps:.1f} FPS", 2.2)):
        origin = (10, int(30 * scale * y))
        cv2.putText(out, line, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(out, line, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


class JsonLinesSink(Sink):
    """One JSON object per frame to a file or stdout."""

    def __init__(self, path: Path | None = None, stream: IO[str] | None = None) -> None:
        self._own = path is not None
        self._stream = open(path, "w", encoding="utf-8") if path is not None else (stream or sys.stdout)

    def write(self, image: np.ndarray, result: dict[str, Any], fps: float) -> bool:
        self._stream.write(json.dumps(result, separators=(",", ":")) + "\n")
        self._stream.flush()
        return True

    def close(self) -> None:
        if self._own:
            self._stream.close()


class VideoSink(Sink):
    """The annotated frames as a video file, written under a temporary name and renamed
    into place on close (a crash leaves no half-written file at the destination)."""

    wants_pixels = True
    _FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".mov": "mp4v"}

    def __init__(self, path: Path, fps: float = 30.0) -> None:
        suffix = path.suffix.lower()
        if suffix not in self._FOURCC:
            raise SourceError(f"cannot write video {path}", f"use one of: {', '.join(self._FOURCC)}")
        self.path = path
        self._tmp = path.with_name(f".{path.stem}.partial{suffix}")
        self._fps = fps if fps > 0 else 30.0
        self._writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray, result: dict[str, Any], fps: float) -> bool:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*self._FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self._fps, (image.shape[1], image.shape[0]))
            if not self._writer.isOpened():
                raise SourceError(f"cannot write video {self.path}", "check the folder exists and is writable")
        self._writer.write(image)
        return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            os.replace(self._tmp, self.path)
            self._writer = None


def display_available() -> bool:
    """True when a window can be shown: a desktop session and OpenCV built with a GUI."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return not (match and match.group(1).upper() == "NONE")  # opencv-python-headless says NONE


class WindowSink(Sink):
    """An OpenCV window; 'q' or Esc stops the run."""

    wants_pixels = True

    def __init__(self, title: str = "edgecls") -> None:
        self.title = title

    def write(self, image: np.ndarray, result: dict[str, Any], fps: float) -> bool:
        cv2.imshow(self.title, image)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        cv2.destroyAllWindows()


class MjpegSink(Sink):
    """Serves the annotated frames as an MJPEG stream over HTTP (stdlib only).

    ``http://HOST:PORT/`` shows a page with the stream; ``/stream`` is the stream itself
    (see ``StreamServer`` for limits and authentication). The loop only hands over its
    newest frame: annotating and JPEG encoding happen in a thread of their own, at most
    ``max_fps`` times a second and only while someone watches, once per frame for all
    viewers, so viewers cost the classification loop almost nothing.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, quality: int = 80, *,
                 auth: StreamAuth | None = None, max_fps: float = 15.0,
                 limits: ServerLimits | None = None) -> None:
        if max_fps <= 0:
            raise ConfigError(f"stream frame rate must be positive, got {max_fps}")
        self._server = StreamServer(host, port, auth, limits)
        self.url = self._server.url
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self._interval = 1.0 / max_fps
        self._latest: tuple[np.ndarray, dict[str, Any], float] | None = None
        self._new_frame = threading.Event()
        self._closed = threading.Event()
        self._encoder = threading.Thread(target=self._encode_loop, name="edgecls-mjpeg-encode", daemon=True)
        self._encoder.start()

    @property
    def server(self) -> StreamServer:
        return self._server

    @property
    def threads(self) -> tuple[threading.Thread, threading.Thread]:
        """The server's thread and the JPEG encoder's (to measure what streaming costs)."""
        return self._server.thread, self._encoder

    def write(self, image: np.ndarray, result: dict[str, Any], fps: float) -> bool:
        self._latest = (image, result, fps)
        if self._server.viewers:
            self._new_frame.set()
        return True

    def _encode_loop(self) -> None:
        lower_thread_priority()
        next_due = 0.0
        while not self._closed.is_set():
            if not self._new_frame.wait(timeout=0.5):
                continue
            wait = next_due - time.monotonic()
            if wait > 0 and self._closed.wait(wait):
                return
            self._new_frame.clear()
            latest = self._latest
            if latest is None or not self._server.viewers:
                continue
            next_due = time.monotonic() + self._interval
            try:
                ok, jpeg = cv2.imencode(".jpg", annotate(*latest), self._params)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end the stream
                _log.warning("stream: frame skipped (%s: %s)", type(exc).__name__, exc)
                continue
            if ok:
                self._server.publish(frame_part(jpeg.tobytes()))

    def close(self) -> None:
        self._closed.set()
        self._new_frame.set()
        self._encoder.join(timeout=5.0)
        self._server.close()
