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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from edgecls.errors import SourceError

log = logging.getLogger(__name__)


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
    text = f"{result['label']} {result['score']:.2f}"
    for line, y in ((text, 1.0), (f"{fps:.1f} FPS", 2.2)):
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

    ``http://HOST:PORT/`` shows a page with the stream; ``/stream`` is the stream itself.
    Frames are JPEG-encoded only while someone is watching.
    """

    wants_pixels = True

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, quality: int = 80) -> None:
        self._jpeg: bytes | None = None
        self._seq = 0
        self._ready = threading.Condition()
        self._clients = 0
        self._quality = quality
        self._closed = False
        try:
            self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as exc:
            raise SourceError(f"cannot serve on {host}:{port} ({exc.strerror})", "pick another --port") from None
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, name="edgecls-mjpeg", daemon=True).start()

    def write(self, image: np.ndarray, result: dict[str, Any], fps: float) -> bool:
        if self._clients:
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
            if ok:
                with self._ready:
                    self._jpeg, self._seq = jpeg.tobytes(), self._seq + 1
                    self._ready.notify_all()
        return True

    def frames(self):
        """Yields each new JPEG for one client until the sink closes."""
        seen = -1
        self._clients += 1
        try:
            while not self._closed:
                with self._ready:
                    self._ready.wait_for(lambda: self._seq != seen or self._closed, timeout=1.0)
                    jpeg, seen_now = self._jpeg, self._seq
                if jpeg is not None and seen_now != seen:
                    seen = seen_now
                    yield jpeg
        finally:
            self._clients -= 1

    def close(self) -> None:
        self._closed = True
        with self._ready:
            self._ready.notify_all()
        self._server.shutdown()
        self._server.server_close()


_PAGE = b"""<!doctype html><html><head><title>edgecls</title></head>
<body style="margin:0;background:#111"><img src="/stream" style="max-width:100%"></body></html>"""


def _handler_for(sink: MjpegSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            if self.path == "/":
                self._send(200, "text/html", _PAGE)
            elif self.path.startswith("/stream"):
                self._stream()
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                for jpeg in sink.frames():
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                    self.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            log.debug("mjpeg: " + args[0], *args[1:])  # type: ignore[operator]

    return Handler
