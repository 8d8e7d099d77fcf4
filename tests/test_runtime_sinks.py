"""Sinks and smoothing: MJPEG over HTTP on 127.0.0.1, annotated video, score smoothing."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls.errors import SourceError
from edgecls.live.sinks import MjpegSink, VideoSink, annotate
from edgecls.live.smoothing import ScoreSmoother

RESULT = {"frame": 0, "label": "red", "score": 0.97, "topk": [["red", 0.97]], "latency_ms": 1.0}


def test_mjpeg_stream_serves_jpeg_frames() -> None:
    sink = MjpegSink("127.0.0.1", 0)
    assert sink.url.startswith("http://127.0.0.1:")
    received: dict[str, bytes] = {}

    def client() -> None:
        with urllib.request.urlopen(sink.url + "stream", timeout=5) as response:
            received["type"] = response.headers["Content-Type"].encode()
            head = response.read(200)
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            start = head.index(b"\r\n\r\n") + 4
            received["body"] = head + response.read(start + length - len(head))
            received["jpeg"] = received["body"][start : start + length]

    thread = threading.Thread(target=client)
    thread.start()
    frame = annotate(np.zeros((120, 160, 3), np.uint8), RESULT, 30.0)
    for _ in range(200):  # until the client is connected and has read enough
        sink.write(frame, RESULT, 30.0)
        thread.join(timeout=0.02)
        if not thread.is_alive():
            break
    page = urllib.request.urlopen(sink.url, timeout=5).read()
    assert [t.name for t in sink.threads] == ["edgecls-serve", "edgecls-mjpeg-encode"]
    assert all(t.is_alive() for t in sink.threads)
    sink.close()
    assert not any(t.is_alive() for t in sink.threads)
    assert b"multipart/x-mixed-replace" in received["type"]
    assert received["body"].startswith(b"--frame")
    image = cv2.imdecode(np.frombuffer(received["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[:2] == (120, 160)
    assert b'<img src="/stream"' in page


def test_annotate_draws_on_a_copy() -> None:
    frame = np.zeros((48, 64, 3), np.uint8)
    drawn = annotate(frame, RESULT, 12.5)
    assert frame.max() == 0 and drawn.max() == 255


def test_video_sink_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    sink = VideoSink(path, fps=10)
    for _ in range(3):
        sink.write(np.zeros((48, 64, 3), np.uint8), RESULT, 10.0)
    assert not path.exists()  # only the temporary name exists until close
    sink.close()
    assert path.stat().st_size > 0 and not list(tmp_path.glob(".*partial*"))
    with pytest.raises(SourceError, match="cannot write video"):
        VideoSink(tmp_path / "out.gif")


def test_smoother_averages_the_last_n() -> None:
    smoother = ScoreSmoother(3, classes=2)
    outputs = [smoother.update(np.array(v, np.float32)) for v in ([1, 0], [0, 1], [0, 1], [0, 1])]
    np.testing.assert_allclose(outputs[0], [1, 0])
    np.testing.assert_allclose(outputs[1], [0.5, 0.5])
    np.testing.assert_allclose(outputs[2], [1 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(outputs[3], [0, 1])
    unchanged = np.array([0.2, 0.8], np.float32)
    assert ScoreSmoother(1, 2).update(unchanged) is unchanged  # a window of 1 copies nothing
