"""Frame sources: files and folders in order, live capture keeping the newest frame,
reconnection after a drop-out, and clear errors for missing cameras and bad videos."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls.errors import SourceError
from edgecls.live.sources import FolderSource, LiveSource, VideoFileSource, list_cameras, open_source


def write_video(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """An MJPG .avi whose frame i has mean brightness 20 * i (readable order)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i % 256, np.uint8))
    writer.release()
    return path


def test_video_file_every_frame_in_order(tmp_path: Path) -> None:
    source = open_source(str(write_video(tmp_path / "v.avi")))
    assert isinstance(source, VideoFileSource) and not source.live
    with source:
        means = [float(f.image.mean()) for f in source]
    assert len(means) == 12
    assert means == sorted(means) and abs(means[5] - 100) < 5


def test_folder_every_image_sorted(image_folder: Path) -> None:
    source = open_source(str(image_folder))
    assert isinstance(source, FolderSource)
    frames = list(source)
    assert len(frames) == 60 and [f.index for f in frames] == list(range(60))
    assert [f.name for f in frames] == sorted(f.name for f in frames)


def test_unreadable_video_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 not a video" * 100)
    with pytest.raises(SourceError, match="cannot read video"):
        open_source(str(bad))


def test_missing_camera_lists_cameras() -> None:
    with pytest.raises(SourceError) as info:
        open_source("/dev/video97")
    assert "does not exist" in info.value.message
    assert "cameras found" in info.value.hint
    for camera in list_cameras():
        assert camera in info.value.hint


def test_unknown_source_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a file, folder, camera or URL"):
        open_source(str(tmp_path / "nothing-here"))


class _SlowCapture:
    """A capture delivering numbered frames quickly, like a 200 FPS camera."""

    def __init__(self) -> None:
        self.count = 0

    def read(self) -> tuple[bool, np.ndarray]:
        time.sleep(0.005)
        self.count += 1
        return True, np.full((4, 4, 3), self.count % 256, np.uint8)

    def release(self) -> None:
        pass


def test_live_source_keeps_only_the_newest_frame() -> None:
    source = LiveSource(_SlowCapture, "fake camera")
    try:
        seen = []
        for frame in source:
            seen.append(int(frame.image[0, 0, 0]))
            time.sleep(0.05)  # a slow model: about 10 camera frames arrive meanwhile
            if len(seen) == 4:
                break
    finally:
        source.close()
    assert seen == sorted(set(seen)), seen  # always newer frames, never a repeat
    assert seen[-1] - seen[0] > 4, seen  # stale frames were dropped, not queued (a queue gives 1, 2, 3, 4)


def test_live_source_reconnects_after_drop_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A video file opened as a live stream 'drops out' at its end and is reopened."""
    video = write_video(tmp_path / "v.avi", frames=3)
    opened = []

    def opener() -> cv2.VideoCapture:
        opened.append(1)
        return cv2.VideoCapture(str(video))

    caplog.set_level(logging.WARNING)
    source = LiveSource(opener, "test stream", max_backoff=0.1)
    try:
        frames = 0
        deadline = time.monotonic() + 30
        for _ in source:
            frames += 1
            time.sleep(0.02)
            if (source.reconnects >= 2 and frames >= 3) or time.monotonic() > deadline:
                break
    finally:
        source.close()
    assert source.reconnects >= 2 and len(opened) >= 3
    assert "dropped out" in caplog.text and "reconnected" in caplog.text


def test_http_mjpeg_stream_is_a_live_source() -> None:
    """Our own MJPEG server (`run --serve`) read back as `--source http://...`."""
    import threading

    from edgecls.live.sinks import MjpegSink

    sink = MjpegSink("127.0.0.1", 0)
    stop = threading.Event()

    def feed() -> None:
        value = 0
        while not stop.is_set():
            sink.write(np.full((48, 64, 3), value % 256, np.uint8), {}, 0.0)
            value += 1
            time.sleep(0.01)

    threading.Thread(target=feed, daemon=True).start()
    source = open_source(sink.url + "stream")
    try:
        assert isinstance(source, LiveSource)
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 3:
                break
    finally:
        source.close()
        stop.set()
        sink.close()
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(f.image.shape == (48, 64, 3) for f in frames)


def test_unreachable_stream_and_missing_picamera2() -> None:
    with pytest.raises(SourceError, match="cannot open stream"):
        open_source("rtsp://127.0.0.1:1/cam")
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError, match="Picamera2 is not installed"):
            open_source("picamera2")
