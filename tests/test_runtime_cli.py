"""`edgecls run` end to end (in-process; in a subprocess where signals and the stream
server are the point): a generated video through --headless, --jsonl/--save/--threshold/
--smooth, and bad inputs giving exit 2 with one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.tiny_models import COLOR_LABELS, TinyNet, make_onnx, tiny_metadata, write_not_a_model

from helpers.cli import edgecls

EDGECLS = [sys.executable, "-m", "edgecls"]


def _run(*args: str) -> subprocess.CompletedProcess:
    """In this process (the stop-signal and --serve tests below start real processes)."""
    return edgecls(*args)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_onnx(tmp_path_factory.mktemp("cli") / "colors.onnx", TinyNet(), tiny_metadata())


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MJPG .avi: 4 red frames, 4 green, 4 blue (BGR)."""
    path = tmp_path_factory.mktemp("video") / "colors.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for bgr in ((0, 0, 255), (0, 255, 0), (255, 0, 0)):
        for _ in range(4):
            writer.write(np.full((48, 64, 3), bgr, np.uint8))
    writer.release()
    return path


def test_headless_json_lines(model: Path, video: Path) -> None:
    result = _run("run", str(model), "--source", str(video), "--headless", "--top-k", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["frame"] for r in lines] == list(range(12))
    assert [r["label"] for r in lines] == [c for c in COLOR_LABELS for _ in range(4)]
    for record in lines:
        assert set(record) == {"frame", "label", "score", "topk", "latency_ms"}
        assert len(record["topk"]) == 2 and record["topk"][0][0] == record["label"]
        assert 0.9 < record["score"] <= 1.0 and record["latency_ms"] > 0
    assert "12 frames" in result.stderr and "p95" in result.stderr


def test_jsonl_save_threshold_smooth(model: Path, video: Path, tmp_path: Path) -> None:
    jsonl, saved = tmp_path / "out.jsonl", tmp_path / "annotated.avi"
    result = _run("run", str(model), "--source", str(video), "--headless", "--jsonl", str(jsonl),
                  "--save", str(saved), "--smooth", "4", "--threshold", "0.9", "--max-frames", "8")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 8 and result.stdout == ""
    labels = [r["label"] for r in records]
    assert labels[:4] == ["red"] * 4
    assert "unknown" in labels[4:7]  # smoothing mixes red and green: below the threshold
    capture = cv2.VideoCapture(str(saved))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    capture.release()
    assert not list(tmp_path.glob(".*partial*"))


def test_image_folder_records_file_names(model: Path, image_folder: Path) -> None:
    result = _run("run", str(model), "--source", str(image_folder), "--headless", "--max-frames", "3")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3 and all(r["file"].endswith(".png") for r in records)


def _assert_user_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], result.stderr


def test_not_a_model_file(tmp_path: Path, video: Path) -> None:
    fake = write_not_a_model(tmp_path / "model.tflite")
    _assert_user_error(_run("run", str(fake), "--source", str(video), "--headless"), "not a valid TFLite model")


def test_missing_camera(model: Path) -> None:
    result = _run("run", str(model), "--source", "/dev/video97", "--headless")
    _assert_user_error(result, "camera /dev/video97 does not exist")
    assert "cameras found" in result.stderr


def test_unreadable_video(model: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF....AVI garbage" * 50)
    _assert_user_error(_run("run", str(model), "--source", str(broken), "--headless"), "cannot read video")


def test_unknown_target(model: Path, video: Path) -> None:
    _assert_user_error(_run("run", str(model), "--source", str(video), "--target", "toaster"), "unknown target")


def test_target_profile_sets_backend_options(model: Path, video: Path) -> None:
    result = _run("run", str(model), "--source", str(video), "--headless", "--target", "x86-cpu", "--max-frames", "2")
    assert result.returncode == 0, result.stderr
    summary = json.loads([line for line in result.stderr.splitlines() if line.startswith("{")][-1])
    assert summary["frames"] == 2 and summary["backend"] == "onnxruntime"
    assert summary["settings"]["threads"] == 4 and summary["settings"]["providers"] == ["CPUExecutionProvider"]
    assert summary["schema_version"] == 1


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_stop_signals_finalize_video_and_summary(model: Path, tmp_path: Path, signame: str) -> None:
    """Ctrl+C, `systemctl stop` / `docker stop` (SIGTERM) and a closed terminal (SIGHUP)
    all end the run cleanly: a playable .mp4, the summary, exit 0."""
    import signal

    long_video = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(long_video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (32, 24))
    for i in range(3000):
        writer.write(np.full((24, 32, 3), i % 256, np.uint8))
    writer.release()
    saved = tmp_path / "annotated.mp4"
    # default dispositions in the child: a harness started under nohup ignores SIGHUP, and an
    # ignored SIGHUP rightly stays ignored by `edgecls run` (tested in test_runtime_loop)
    process = subprocess.Popen([*EDGECLS, "run", str(model), "--source", str(long_video), "--headless",
                                "--save", str(saved)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                               preexec_fn=lambda: signal.signal(getattr(signal, signame), signal.SIG_DFL))
    assert process.stdout is not None
    # unbuffered: a buffered readline may take more lines than the first from the pipe,
    # which communicate() would then not see (and the count below would miss them)
    first = json.loads(process.stdout.readline())
    process.send_signal(getattr(signal, signame))
    out, err = (stream.decode() for stream in process.communicate(timeout=60))
    assert first["frame"] == 0 and process.returncode == 0, err
    assert "Traceback" not in err
    assert ("interrupted:" if signame == "SIGINT" else f"stopped by {signame}:") in err
    summary = json.loads([line for line in err.splitlines() if line.startswith("{")][-1])
    written = len(out.splitlines()) + 1
    assert summary["interrupted"] and summary["signal"] == signame and summary["frames"] == written < 3000
    capture = cv2.VideoCapture(str(saved))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == written and not list(tmp_path.glob(".*partial*"))


def test_serve_port_out_of_range(model: Path, video: Path) -> None:
    result = _run("run", str(model), "--source", str(video), "--headless", "--serve", "--port", "70000")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "65535" in result.stderr and "--port" in result.stderr


def test_serve_prints_the_url_with_its_token(model: Path, video: Path) -> None:
    result = subprocess.run([*EDGECLS, "run", str(model), "--source", str(video), "--headless", "--serve",
                             "--port", "0", "--max-frames", "2"], check=False, capture_output=True, text=True,
                            timeout=120,
                            env={**os.environ, "EDGECLS_SERVE_TOKEN": "cli-token-42424242"})
    assert result.returncode == 0, result.stderr
    assert re.search(r"streaming on http://127\.0\.0\.1:\d+/\?token=cli-token-42424242", result.stderr)
    bad = _run("run", str(model), "--source", str(video), "--serve", "--token", "x")
    _assert_user_error(bad, "stream token must be 8 to 256 characters")
