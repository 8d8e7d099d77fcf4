"""Explanations where they show up without asking: `edgecls evaluate` (most confident
mistakes) and `edgecls export` (test images whose top-1 INT8 changed, with heatmaps)."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from edgecls.explain.gallery import confident_mistakes, write_mistakes_gallery
from test_export import make_run
from test_export_cli import black_image_folder, run_cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("explain_run"), epochs=2)  # under-trained: it errs


def test_confident_mistakes_are_wrong_and_sorted() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95]])
    labels = np.array([0, 0, 0, 1])
    mistakes = confident_mistakes([Path(f"{i}.png") for i in range(4)], labels, probabilities, count=5)
    assert [m.path.name for m in mistakes] == ["1.png", "2.png"]
    assert mistakes[0].confidence == pytest.approx(0.8) and mistakes[0].predicted_index == 1


def test_evaluate_writes_the_mistakes_gallery(run_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, output = run_cli(monkeypatch, capsys, "evaluate", str(run_dir), "--json", str(tmp_path / "ev.json"))
    assert code == 0, output
    gallery = tmp_path / "ev_mistakes.png"
    if "no mistakes to show" in output:
        pytest.skip("the tiny run made no mistake")
    image = cv2.imread(str(gallery))
    assert image is not None and image.shape[1] >= 3 * 160  # image, predicted and true class heatmaps


def test_gallery_is_empty_without_mistakes(run_dir: Path, tmp_path: Path) -> None:
    shown = write_mistakes_gallery(run_dir, "test", tmp_path / "g.png", count=0)
    assert shown == 0 and not (tmp_path / "g.png").exists()


def test_export_page_shows_int8_top1_changes(run_dir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "export"
    code, output = run_cli(monkeypatch, capsys, "export", str(run_dir), "--formats", "onnx",
                           "--precision", "int8", "--calibration", str(black_image_folder(tmp_path / "black")),
                           "--no-remedies", "--max-drop", "100", "--out", str(out))
    assert code == 0, output
    page = (out / "changes.html").read_text()
    changed = int(re.search(r"model_int8\.onnx: (\d+) of (\d+) changed top-1", page).group(1))
    assert changed > 0  # a black calibration image breaks INT8
    assert page.count("data:image/png;base64,") == min(changed, 4)
    assert "src='http" not in page and "<script" not in page  # self-contained
    assert "top-1 changed vs float: model_int8.onnx" in output
