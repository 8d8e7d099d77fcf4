"""Explanations where they show up without asking: `edgecls evaluate` (most confident
mistakes) and `edgecls export` (test images whose top-1 INT8 changed, with heatmaps)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from edgecls.explain.changes import ArtifactChanges, changed_top1, changes_html
from edgecls.explain.gallery import confident_mistakes, write_mistakes_gallery
from helpers.cli import run_cli
from helpers.images import black_image_folder


@pytest.fixture(scope="module")
def run_dir(tiny_runs, tmp_path_factory) -> Path:
    return tiny_runs.copy(tmp_path_factory.mktemp("explain_run"), epochs=2)  # under-trained: it errs


def test_confident_mistakes_are_wrong_and_sorted() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.05, 0.95]])
    labels = np.array([0, 0, 0, 1])
    mistakes = confident_mistakes([Path(f"{i}.png") for i in range(4)], labels, probabilities, count=5)
    assert [m.path.name for m in mistakes] == ["1.png", "2.png"]
    assert mistakes[0].confidence == pytest.approx(0.8) and mistakes[0].predicted_index == 1


def test_changed_top1_orders_by_lost_float_confidence() -> None:
    float_probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7]])
    int8_probs = np.array([[0.9, 0.1], [0.45, 0.55], [0.2, 0.8], [0.2, 0.8]])
    assert changed_top1(float_probs, int8_probs).tolist() == [2, 1]
    page = changes_html([ArtifactChanges(Path("model_int8.tflite"), total=4, changed=0)])
    assert "model_int8.tflite: 0 of 4 changed top-1" in page and page.startswith("<!DOCTYPE html>")


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


@pytest.fixture(scope="module")
def broken_export(run_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    """`edgecls export` to INT8 ONNX calibrated on one black image (many top-1 change): the
    export folder and the command's output."""
    root = tmp_path_factory.mktemp("broken_export")
    result = subprocess.run([sys.executable, "-m", "edgecls", "export", str(run_dir), "--formats", "onnx",
                             "--precision", "int8", "--calibration", str(black_image_folder(root / "black")),
                             "--no-remedies", "--max-drop", "100", "--explain", "--out", str(root / "export")],
                            check=False, capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    return root / "export", result.stdout


@pytest.mark.slow  # an INT8 export in a subprocess; the default suite's export CLI tests write the page too
def test_export_page_shows_int8_top1_changes(broken_export: tuple[Path, str]) -> None:
    out, output = broken_export
    assert "top-1 changed vs float: model_int8.onnx" in output
    page = (out / "changes.html").read_text()
    changed = int(re.search(r"model_int8\.onnx: (\d+) of (\d+) changed top-1", page).group(1))
    assert changed > 0  # a black calibration image breaks INT8
    assert page.count("data:image/png;base64,") == min(changed, 4)
    assert "src='http" not in page and "<script" not in page  # self-contained


@pytest.mark.slow  # a subprocess importing TensorFlow (its start-up lines go to the C-level stderr)
def test_explain_of_an_artifact_against_a_run_is_quiet_and_says_what_the_time_covers(
        run_dir: Path, tmp_path: Path) -> None:
    """Issue 24: `explain ARTIFACT --compare RUN` printed TensorFlow's CUDA and absl start-up
    lines (other commands mute them) and a per-image time far from the command's."""
    from helpers.tiny_models import make_onnx, tiny_metadata

    labels = (run_dir / "labels.txt").read_text().split()
    artifact = make_onnx(tmp_path / "model_int8.onnx", metadata=tiny_metadata(labels=labels))
    image = next((run_dir.parent / "images").rglob("*.png"))
    env = {**os.environ, "COLUMNS": "250"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell: the CLI sets it itself
    proc = subprocess.run([sys.executable, "-m", "edgecls", "explain", str(artifact), str(image),
                           "--compare", str(run_dir), "--masks", "8", "--out", str(tmp_path / "why")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for noise in ("cuda", "absl", "oneDNN", "I0000"):
        assert noise not in proc.stderr, proc.stderr
    assert re.search(r"1 image\(s\) explained \(RISE \d+\.\d s per image for both models; \d+ s in "
                     r"all including model loading\)", " ".join(proc.stderr.split())), proc.stderr


@pytest.mark.slow
def test_cli_explains_a_run_against_its_int8_export(run_dir: Path, broken_export: tuple[Path, str],
                                                   tmp_path: Path, monkeypatch, capsys) -> None:
    import json

    image = next((run_dir.parent / "images").rglob("*.png"))
    code, output = run_cli(monkeypatch, capsys, "explain", str(run_dir), str(image), "--out", str(tmp_path / "a"))
    assert code == 0, output
    assert json.loads((tmp_path / "a" / "explanations.json").read_text())["method"] == "gradcam"
    code, output = run_cli(monkeypatch, capsys, "explain", str(run_dir), str(image), "--compare",
                           str(broken_export[0] / "model_int8.onnx"), "--masks", "64", "--out", str(tmp_path / "b"))
    assert code == 0, output
    data = json.loads((tmp_path / "b" / "explanations.json").read_text())
    assert data["method"] == "rise" and data["compared_model"]["kind"] == "onnxruntime"
    difference = data["images"][0]["compared"]["differences"][0]
    assert -1 <= difference["rank_correlation"] <= 1 and 0 <= difference["top20_overlap"] <= 1
    assert "rank corr" in output


def test_report_page_embeds_the_changes_page(tmp_path: Path) -> None:
    from edgecls.errors import DataError
    from edgecls.explain.changes import embed_changes

    changes = tmp_path / "changes.html"
    changes.write_text(changes_html([ArtifactChanges(Path("model_int8.onnx"), total=9, changed=0)]))
    report = "<!DOCTYPE html><html><body><h1>edgecls bench report</h1></body></html>"
    page = embed_changes(report, [changes])
    assert page.index("edgecls bench report") < page.index("<h3>model_int8.onnx: 0 of 9 changed top-1</h3>")
    assert page.count("<body>") == 1 and page.rstrip().endswith("</html>")
    (tmp_path / "other.html").write_text("<html><body>hi</body></html>")
    with pytest.raises(DataError, match="not a changes.html page"):
        embed_changes(report, [tmp_path / "other.html"])
