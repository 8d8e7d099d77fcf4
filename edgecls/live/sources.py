"""Frame sources for ``edgecls run --source SRC``.

Live sources (camera index or /dev/videoN, RTSP/HTTP URL, GStreamer pipeline,
Picamera2) are read by a capture thread that keeps only the newest frame, so a slow
model never builds up lag, and that reconnects with backoff when the camera drops
out. Video files and image folders deliver every frame, in order.
"""

from __future__ import annotations

import glob
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from edgecls.errors import DataError, SourceError
from edgecls.formats import IMAGE_SUFFIXES, is_image
from edgecls.runtime.preprocess import read_image_bgr

log = logging.getLogger(__name__)

_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp)://", re.IGNORECASE)


@dataclass
class Frame:
    """One BGR frame and where it came from."""

    index: int
    image: np.ndarray
    timestamp: float
    name: str | None = None  # file name, for image folders


class FrameSource:
    """Iterable of ``Frame``; ``live`` sources drop stale frames, the others never do."""

    live = False
    description = ""

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FolderSource(FrameSource):
    """Every image of a folder (or one image file), sorted by path. In a folder, hidden
    files (macOS ``._name.jpg`` resource forks) are left out, and a file that does not
    decode (empty, truncated, not an image) is skipped with a warning, as ``data check``
    excludes it: one bad photo must not end a run over thousands. A single file that
    does not decode, or a folder where none does, is an error."""

    def __init__(self, path: Path) -> None:
        self.description = f"images in {path}"
        self.root = path
        self.single = path.is_file()
        files = [path] if self.single else sorted(
            p for p in path.rglob("*") if is_image(p) and not _hidden(p, path))
        if not files:
            raise SourceError(f"no images in {path}", f"expected files ending in {', '.join(IMAGE_SUFFIXES)}")
        self.files = files
        self.skipped: list[Path] = []

    def __iter__(self) -> Iterator[Frame]:
        index, first_reason = 0, ""
        for path in self.files:
            try:
                image = read_image_bgr(path)
            except DataError as exc:
                if self.single:
                    raise
                self.skipped.append(path)
                first_reason = first_reason or exc.message
                log.warning("skipped %s: %s", path, exc.message)
                continue
            yield Frame(index, image, time.monotonic(), name=str(path))
            index += 1
        if index == 0:
            raise DataError(f"none of the {len(self.files)} image file(s) in {self.root} could be read "
                            f"(the first: {first_reason})",
                            "`edgecls data check` lists every unreadable file and why")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


class VideoFileSource(FrameSource):
    """Every frame of a video file, in order."""

    def __init__(self, path: Path) -> None:
        self.description = f"video {path}"
        self.path = path
        self._capture = cv2.VideoCapture(str(path))
        ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok or first is None:
            self._capture.release()
            raise SourceError(f"cannot read video {path}",
                              "is it a video OpenCV can decode (mp4/avi/mkv)? try playing it with ffplay")
        self._first = first
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        frame = self._first
        while frame is not None:
            yield Frame(index, frame, time.monotonic())
            index += 1
            ok, frame = self._capture.read()
            frame = frame if ok else None

    def close(self) -> None:
        self._capture.release()


class LiveSource(FrameSource):
    """A capture thread keeping only the newest frame; reconnects with backoff on drop-out.

    Args:
        opener: returns an opened capture object with ``read()`` and ``release()``
            (a ``cv2.VideoCapture`` or a Picamera2 adapter), or raises SourceError.
        description: what the source is, for messages.
        max_backoff: longest wait between reconnection attempts, in seconds.
    """

    live = True

    def __init__(self, opener: Callable[[], Any], description: str, max_backoff: float = 8.0,
                 first_frame_timeout: float = 10.0) -> None:
        self.description = description
        self._opener = opener
        self._max_backoff = max_backoff
        self._capture = opener()
        self._frame: np.ndarray | None = None
        self._frame_id = 0
        self._stop = threading.Event()
        self._new = threading.Condition()
        self.reconnects = 0
        self._first_frame_timeout = first_frame_timeout
        self._thread = threading.Thread(target=self._grab_loop, name="edgecls-capture", daemon=True)
        self._thread.start()

    def _grab_loop(self) -> None:
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if not ok or image is None:
                self._reconnect()
                continue
            with self._new:
                self._frame, self._frame_id = image, self._frame_id + 1
                self._new.notify_all()

    def _reconnect(self) -> None:
        self._capture.release()
        delay = 0.25
        while not self._stop.is_set():
            log.warning("%s dropped out; reconnecting in %.1f s", self.description, delay)
            if self._stop.wait(delay):
                return
            try:
                self._capture = self._opener()
                self.reconnects += 1
                log.warning("%s reconnected", self.description)
                return
            except SourceError:
                delay = min(delay * 2, self._max_backoff)

    def __iter__(self) -> Iterator[Frame]:
        index, seen = 0, 0
        timeout = self._first_frame_timeout
        while not self._stop.is_set():
            with self._new:
                if not self._new.wait_for(lambda seen=seen: self._frame_id != seen or self._stop.is_set(), timeout):
                    if index == 0:
                        raise SourceError(f"{self.description} delivered no frame in {timeout:.0f} s",
                                          "is the camera in use by another program?")
                    continue
                image, seen = self._frame, self._frame_id
            if image is not None:
                yield Frame(index, image, time.monotonic())
                index += 1

    def close(self) -> None:
        self._stop.set()
        with self._new:
            self._new.notify_all()
        self._thread.join(timeout=2.0)
        self._capture.release()


class _Picamera2Capture:
    """Picamera2 behind the ``read()/release()`` interface of ``cv2.VideoCapture``."""

    def __init__(self, size: tuple[int, int] = (640, 480)) -> None:
        from picamera2 import Picamera2  # type: ignore[import-not-found]

        self._camera = Picamera2()
        config = self._camera.create_video_configuration(main={"size": size, "format": "RGB888"})
        self._camera.configure(config)
        self._camera.start()

    def read(self) -> tuple[bool, np.ndarray | None]:
        try:
            return True, self._camera.capture_array()  # "RGB888" is BGR byte order
        except Exception as exc:  # noqa: BLE001 - the camera stack raises many types
            log.warning("Picamera2 capture failed: %s", exc)
            return False, None

    def release(self) -> None:
        if self._camera is not None:  # release may be called again after a reconnect
            self._camera.stop()
            self._camera.close()
            self._camera = None


def list_cameras() -> list[str]:
    """The V4L2 video devices that exist on this machine."""
    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


def _missing_camera(spec: str) -> SourceError:
    cameras = list_cameras()
    found = ", ".join(cameras) if cameras else "none (no /dev/video* devices)"
    return SourceError(f"camera {spec} does not exist", f"cameras found: {found}")


def _open_capture(target: Any, api: int, description: str) -> Callable[[], Any]:
    hint = "check the address, cable or pipeline"
    if api == cv2.CAP_GSTREAMER and not re.search(r"GStreamer:\s*YES", cv2.getBuildInformation()):
        hint = ("this OpenCV has no GStreamer support (pip's opencv-python wheels do not); "
                "use the system OpenCV, e.g. a venv with --system-site-packages on Jetson")

    def opener() -> Any:
        capture = cv2.VideoCapture(target, api)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {description}", hint)
        return capture

    return opener


def _open_camera(spec: str) -> LiveSource:
    device = f"/dev/video{spec}" if spec.isdigit() else spec
    if sys.platform.startswith("linux") and not Path(device).exists():
        raise _missing_camera(spec)
    target: Any = int(spec) if spec.isdigit() else device
    return LiveSource(_open_capture(target, cv2.CAP_V4L2, f"camera {device}"), f"camera {device}")


def _open_picamera() -> LiveSource:
    try:
        import picamera2  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        raise SourceError("Picamera2 is not installed",
                          "on Raspberry Pi OS: sudo apt install python3-picamera2 "
                          "(and create the venv with --system-site-packages)") from None
    return LiveSource(_Picamera2Capture, "Picamera2 camera")


def open_source(spec: str | int) -> FrameSource:
    """Opens a source from its command-line spelling.

    ``0`` or ``/dev/video0``: V4L2 camera; ``picamera2``: Raspberry Pi camera;
    ``rtsp://...``/``http://...``: network stream; a string with ``!``: GStreamer
    pipeline (e.g. a Jetson CSI camera through nvarguscamerasrc); a folder or image
    file: every image; any other file: a video.

    Raises:
        SourceError: the camera, file or stream cannot be opened or read.
    """
    spec = str(spec).strip()
    if spec.isdigit() or spec.startswith("/dev/video"):
        return _open_camera(spec)
    if spec.lower() in ("picamera", "picamera2", "picam"):
        return _open_picamera()
    if _URL.match(spec):
        return LiveSource(_open_capture(spec, cv2.CAP_FFMPEG, f"stream {spec}"), f"stream {spec}")
    if "!" in spec:
        return LiveSource(_open_capture(spec, cv2.CAP_GSTREAMER, "GStreamer pipeline"), "GStreamer pipeline")
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and is_image(path)):
        return FolderSource(path)
    if path.is_file():
        return VideoFileSource(path)
    raise SourceError(f"source {spec!r} is not a file, folder, camera or URL",
                      "pass a camera index (0), /dev/videoN, a video file, an image folder, "
                      "an rtsp:// or http:// URL, a GStreamer pipeline or 'picamera2'")
