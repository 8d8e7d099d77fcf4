"""edgecls.explain through the TensorFlow-free runtime: RISE and occlusion find the known
evidence of a constructed model, outputs, comparisons, bad input and the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.explain_models import make_quadrant_onnx
from helpers.tiny_models import make_onnx, make_openvino, tiny_metadata
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.errors import ConfigError, DataError
from edgecls.explain import ExplainSettings, RiseOptions, explain, save_report
from edgecls.explain.agnostic import explain_agnostic
from edgecls.explain.compare import heatmap_difference, rank_correlation, top_overlap
from edgecls.explain.faithfulness import deletion_insertion
from edgecls.explain.model import RuntimeModel
from edgecls.explain.occlusion import OcclusionOptions
from helpers.cli import run_cli

FAST = RiseOptions(masks=200, batch_size=50)


@pytest.fixture(scope="module")
def quadrant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_quadrant_onnx(tmp_path_factory.mktemp("quadrant") / "quadrant.onnx")


def red_noise(seed: int = 0, size: int = 32) -> np.ndarray:
    """A reddish noise BGR image: evidence for "red" everywhere, used only top-left."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    image[..., 2] = rng.integers(150, 255, (size, size), dtype=np.uint8)
    return image


def quadrant_share(heatmap: np.ndarray) -> float:
    """Share of the heatmap's top-20% pixels inside the top-left quadrant."""
    h, w = heatmap.shape
    top = heatmap >= np.quantile(heatmap, 0.8)
    return float(top[: h // 2, : w // 2].sum() / top.sum())


def test_import_explain_does_not_import_tensorflow() -> None:
    code = ("import sys, edgecls.explain, edgecls.explain.agnostic, edgecls.explain.output\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("method, options", [("rise", FAST), ("occlusion", OcclusionOptions(window=0.25))])
def test_heatmap_finds_the_only_region_the_model_reads(quadrant: Path, method: str, options) -> None:
    model = RuntimeModel(quadrant)
    [explanation] = explain_agnostic(model, red_noise(), [0], method, options)
    assert explanation.class_name == "red" and explanation.score > 0.9
    assert explanation.heatmap.shape == (32, 32)
    assert 0.0 <= explanation.heatmap.min() and explanation.heatmap.max() == pytest.approx(1.0)
    assert quadrant_share(explanation.heatmap) > 0.9


def test_rise_heatmap_is_more_faithful_than_its_inverse(quadrant: Path) -> None:
    model = RuntimeModel(quadrant)
    image = red_noise(1)
    [explanation] = explain_agnostic(model, image, [0], "rise", FAST)
    prepared = model.prepare(image)
    good = deletion_insertion(model.predict, prepared, explanation.heatmap, 0, model.baseline)
    bad = deletion_insertion(model.predict, prepared, 1 - explanation.heatmap, 0, model.baseline)
    assert good.deletion < bad.deletion - 0.2  # (a blurred red image is still red: insertion ties)
    assert good.insertion >= bad.insertion - 1e-3


def test_heatmap_difference_extremes() -> None:
    ramp = np.tile(np.linspace(0, 1, 56, dtype=np.float32), (56, 1))
    assert rank_correlation(ramp, ramp) == pytest.approx(1.0)
    assert top_overlap(ramp, ramp) == pytest.approx(1.0)
    assert rank_correlation(ramp, 1 - ramp) == pytest.approx(-1.0)
    assert top_overlap(ramp, 1 - ramp) == 0.0
    assert heatmap_difference(ramp, np.zeros_like(ramp)).rank_correlation == 0.0


def test_compare_same_model_in_two_formats_agrees(tmp_path: Path) -> None:
    meta = tiny_metadata()
    onnx_model = make_onnx(tmp_path / "tiny.onnx", metadata=meta)
    xml_model = make_openvino(tmp_path / "tiny.xml", metadata=meta)
    image = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    report = explain(onnx_model, [image], ExplainSettings(top_k=2, rise=FAST), compare=xml_model)
    [result] = report.results
    assert report.method == "rise"
    assert [e.class_name for e in result.explanations] == [e.class_name for e in result.compared]
    assert result.top1_changed is False
    for difference in result.differences:
        assert difference.rank_correlation > 0.99 and difference.top_overlap > 0.9


def test_folder_report_files_and_json(quadrant: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(folder / "sub" / f"img{i}.png"), red_noise(i))
    (folder / "broken.jpg").write_text("not an image")
    report = explain(quadrant, [folder], ExplainSettings(method="occlusion", class_name="green"))
    json_path = save_report(report, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["schema_version"] == 1 and data["method"] == "occlusion"
    assert len(data["images"]) == 3 and data["skipped"][0]["image"].endswith("broken.jpg")
    entry = data["images"][0]["explanations"][0]
    assert entry["class"] == "green" and entry["seconds"] > 0
    assert np.array(entry["heatmap"]).shape == (data["grid_size"], data["grid_size"])
    for image in data["images"]:
        png = cv2.imread(str(tmp_path / "out" / image["png"]))
        assert png is not None and png.shape[1] > 2 * png.shape[0] - 60  # original beside overlay
    assert cv2.imread(str(tmp_path / "out" / "contact_sheet.png")) is not None


def test_bad_input_errors(quadrant: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="cannot decode"):
        explain(quadrant, [broken])
    with pytest.raises(ConfigError, match="unknown class 'tulip'.*"):
        explain(quadrant, [red_noise()], ExplainSettings(class_name="tulip"))
    with pytest.raises(ConfigError, match="needs the float Keras model"):
        explain(quadrant, [red_noise()], ExplainSettings(method="gradcam"))


def test_cli_explain_and_one_line_errors(quadrant: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    image = tmp_path / "red.png"
    cv2.imwrite(str(image), red_noise())
    runner = CliRunner()
    ok = runner.invoke(app, ["explain", str(quadrant), str(image), "--out", str(tmp_path / "o"),
                             "--masks", "64", "--top-k", "2"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "o" / "red.png").is_file() and (tmp_path / "o" / "explanations.json").is_file()
    broken = tmp_path / "broken.png"
    broken.write_text("no")
    cases = [([str(image), "--class", "tulip"], "unknown class 'tulip'"),
             ([str(broken)], "cannot decode image"),
             ([str(image), "--method", "gradcam"], "use --method rise or --method occlusion")]
    result = subprocess.run([sys.executable, "-m", "edgecls", "explain", str(quadrant), *cases[0][0],
                             "--out", str(tmp_path / "bad")], check=False, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr  # the real entry point, once
    assert cases[0][1] in result.stderr and "Traceback" not in result.stderr
    for args, message in cases[1:]:
        code, output = run_cli(monkeypatch, capsys, "explain", str(quadrant), *args, "--out", str(tmp_path / "bad"))
        assert code == 2, output
        assert message in output and "Traceback" not in output
    assert not (tmp_path / "bad" / "explanations.json").exists()


def test_explain_imports_tensorflow_for_a_run_given_as_either_model(tmp_path: Path) -> None:
    """Its import is muted and timed inside the command, also for `--compare RUN`."""
    from edgecls.cli.explain import needs_tensorflow

    assert needs_tensorflow(tmp_path / "run", None) and needs_tensorflow(tmp_path / "m.keras", None)
    assert needs_tensorflow(tmp_path / "model_int8.tflite", tmp_path / "run")
    assert not needs_tensorflow(tmp_path / "model_int8.tflite", tmp_path / "model_fp32.onnx")
    assert not needs_tensorflow(tmp_path / "model_int8.xml", None)


def test_cli_says_what_the_time_covers(quadrant: Path, tmp_path: Path) -> None:
    image = tmp_path / "red.png"
    cv2.imwrite(str(image), red_noise())
    result = CliRunner().invoke(app, ["explain", str(quadrant), str(image), "--compare", str(quadrant),
                                      "--out", str(tmp_path / "o"), "--masks", "16"])
    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.split())
    assert re.search(r"1 image\(s\) explained \(RISE \d+\.\d s per image for both models; "
                     r"\d+ s in all including model loading\)", summary), summary


def test_cli_help_explains_the_methods() -> None:
    result = CliRunner().invoke(app, ["explain", "--help"])
    assert result.exit_code == 0
    assert "gradcam" in result.output and "RISE" in result.output and "--compare" in result.output
