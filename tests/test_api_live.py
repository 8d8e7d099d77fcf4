"""``edgecls.run_live``: the loop of ``edgecls run`` through the Python API, on a real
tiny ONNX model and real video / image-folder sources: the summary it returns (the one
the CLI prints), frames collected, the CLI's typed errors, and a clean stop on Ctrl+C."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import run_cli
from helpers.images import write_color_folder
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

import edgecls


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_onnx(tmp_path_factory.mktemp("live_api") / "colors.onnx", TinyNet(), tiny_metadata())


def _video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (32, 32))
    for index in range(frames):
        writer.write(np.full((32, 32, 3), (0, 0, 255) if index % 2 else (128, 128, 128), np.uint8))
    writer.release()
    return path


def test_run_live_returns_the_summary_the_cli_prints(model: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    colors = write_color_folder(tmp_path / "colors", per_class=3)
    summary = edgecls.run_live(model, source=str(colors / "red"), jsonl=tmp_path / "api.jsonl", top_k=2)
    lines = [json.loads(line) for line in (tmp_path / "api.jsonl").read_text().splitlines()]
    assert summary.frames == len(lines) == 3 and all(line["label"] == "red" for line in lines)
    assert summary.backend == "onnxruntime" and not summary.interrupted and summary.exit_code == 0
    assert summary.latency_ms_p95 >= summary.latency_ms_p50 > 0 and summary.collected is None
    html = summary._repr_html_()
    assert "<table" in html and "live run: done" in html and "latency p95" in html

    code, output = run_cli(monkeypatch, capsys, "run", str(model), "--source", str(colors / "red"),
                           "--jsonl", str(tmp_path / "cli.jsonl"), "--top-k", "2")
    printed = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    assert code == 0 and set(printed) == set(summary.to_dict()) and printed["frames"] == summary.frames


def test_run_live_stops_at_max_frames_and_collects(model: Path, tmp_path: Path) -> None:
    video = _video(tmp_path / "mixed.avi", 20)
    summary = edgecls.run_live(model, source=str(video), headless=True, jsonl=tmp_path / "out.jsonl",
                               max_frames=6, collect=tmp_path / "frames", collect_random=1.0)
    assert summary.frames == 6 and summary.collected["kept"] >= 1
    assert len(list((tmp_path / "frames").glob("*.jpg"))) == summary.collected["kept"]
    assert "frames kept (collect)" in summary._repr_html_()


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"collect_below": 0.3}, edgecls.ConfigError, "--collect-below needs --collect DIR"),
    ({"collect": "{tmp}/new", "collect_when_full": "panic"}, edgecls.ConfigError,
     "--collect-when-full 'panic' is not one of"),
    ({"source": "{tmp}/nowhere"}, edgecls.SourceError, "nowhere"),
])
def test_run_live_raises_the_cli_errors(model: Path, tmp_path: Path, monkeypatch, capsys, options: dict,
                                        error: type, message: str) -> None:
    filled = {name: str(value).format(tmp=tmp_path) if isinstance(value, str) else value
              for name, value in options.items()}
    filled.setdefault("source", str(_video(tmp_path / "v.avi", 2)))
    with pytest.raises(error, match=message.format(tmp=tmp_path)) as raised:
        edgecls.run_live(model, headless=True, **filled)
    flags = [arg for name, value in filled.items() for arg in (f"--{name.replace('_', '-')}", str(value))]
    code, output = run_cli(monkeypatch, capsys, "run", str(model), "--headless", *flags)
    assert code == 2 and f"error: {raised.value.message}" in output
    assert not (tmp_path / "new").exists()


CTRL_C = """
import json, os, signal, sys
import edgecls
from edgecls.live.sinks import JsonLinesSink

written, write = [], JsonLinesSink.write

def write_then_interrupt(self, image, result, fps):
    written.append(1)
    if len(written) == 3:  # SIGINT to the process while the third frame is written
        os.kill(os.getpid(), signal.SIGINT)
    return write(self, image, result, fps)

JsonLinesSink.write = write_then_interrupt
signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job's shell ignores it
summary = edgecls.run_live(sys.argv[1], source=sys.argv[2], jsonl=sys.argv[3])
print(json.dumps({"interrupted": summary.interrupted, "frames": summary.frames}))
"""


def test_ctrl_c_ends_run_live_cleanly_with_the_summary(model: Path, tmp_path: Path) -> None:
    """What interrupting a notebook's kernel does: SIGINT to the process mid-run, sent from
    the frame loop itself (a thread timing it could miss a run of 3000 tiny frames, which
    ends in half a second), in a process of its own: the signal must reach nothing else
    (a pytest-xdist worker dies of it)."""
    video, jsonl = _video(tmp_path / "long.avi", 3000), tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-c", CTRL_C, str(model), str(video), str(jsonl)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["interrupted"] and 3 <= summary["frames"] < 3000, summary
    assert len(jsonl.read_text().splitlines()) == summary["frames"]  # every frame written, file closed
