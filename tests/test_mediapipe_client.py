"""The real client of standard TFLite Metadata: MediaPipe Tasks' ``ImageClassifier``
runs every TFLite artifact of ``edgecls export`` as it is, names our labels, and agrees
with ``edgecls run``; MediaPipe's flatc-generated schema reader reads what we wrote.

MediaPipe lives in its own cached virtualenv (see ``helpers/mediapipe_env.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.mediapipe_env import run_client

from helpers.images import write_image_folder
from helpers.runs import CLASSES, SIZE

# A virtualenv built from PyPI on first use, MediaPipe and four `edgecls run` processes:
# minutes, so long tests. Our own writer and reader of the same metadata are checked by
# default in test_tflite_standard_metadata.py.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
MIN_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def exported(tiny_runs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from edgecls.export.pipeline import ExportConfig, export_run

    root = tmp_path_factory.mktemp("mediapipe")
    run = tiny_runs.copy(root)
    config = ExportConfig(out=root / "export", formats=["tflite"], precisions=list(PRECISIONS))
    export_run(run, config)
    return {p: root / "export" / f"model_{p}.tflite" for p in PRECISIONS}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """60 fresh images (20 per class, another seed than training), model-sized."""
    folder = write_image_folder(tmp_path_factory.mktemp("mp_images"), {k: 20 for k in CLASSES},
                                size=SIZE, seed=11)
    return sorted(folder.glob("*/*.png"))


def edgecls_run_top1(model: Path, folder: Path, out: Path) -> dict[str, str]:
    """File name -> top-1 label, from the real ``edgecls run --headless --jsonl``."""
    subprocess.run([sys.executable, "-m", "edgecls", "run", str(model), "--source", str(folder),
                    "--headless", "--jsonl", str(out), "--top-k", "1"],
                   check=True, capture_output=True, timeout=300, env=dict(os.environ))
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {Path(row["file"]).name: row["topk"][0][0] for row in rows}


def check_against_mediapipe(exported: dict[str, Path], images: list[Path], labels: list[str],
                            work: Path) -> dict[str, dict]:
    """Runs MediaPipe and ``edgecls run`` on ``images`` (one folder); asserts MediaPipe loads
    every model, names our labels and agrees on top-1; returns MediaPipe's answers."""
    result = run_client("classify", {"models": [str(p) for p in exported.values()],
                                     "images": [str(p) for p in images]})
    answers = {}
    for precision, model in exported.items():
        answer = result[str(model)]
        assert "error" not in answer, f"{precision}: MediaPipe refused it: {answer.get('error')}"
        assert set(answer["names"]) <= set(labels), f"{precision}: category names {answer['names']}"
        ours = edgecls_run_top1(model, images[0].parents[1], work / f"{precision}.jsonl")
        assert len(ours) == len(images) >= 50
        theirs = {p.name: top[0] for p, top in zip(images, answer["top"])}
        agreement = sum(ours[name] == theirs[name] for name in theirs) / len(theirs)
        assert agreement >= MIN_AGREEMENT, f"{precision}: top-1 agreement {agreement:.3f}"
        print(f"{precision}: MediaPipe vs edgecls run top-1 agreement {agreement:.3f} on {len(images)} images")
        answers[precision] = {"theirs": theirs, "top": answer["top"], "names": answer["names"],
                              "agreement": agreement}
    return answers


def test_mediapipe_classifies_every_tflite_artifact(exported: dict[str, Path], images: list[Path],
                                                    tmp_path: Path) -> None:
    answers = check_against_mediapipe(exported, images, sorted(CLASSES), tmp_path)
    truth = {p.name: p.parent.name for p in images}
    for precision, answer in answers.items():
        assert answer["names"] == sorted(CLASSES), precision  # every category, by our names
        # meaningful predictions: the winner is clearly ahead on most images, not a tie
        margins = [top[1] - top[2] for top in answer["top"]]
        assert sum(m > 0.2 for m in margins) >= 0.8 * len(margins), precision
        hits = sum(answer["theirs"][n] == truth[n] for n in truth)
        assert hits / len(truth) >= 0.9, precision


@pytest.mark.timeout(7200)
def test_mediapipe_on_real_flowers(shared_dir: Path, tmp_path: Path) -> None:
    """A real model (EfficientNet-Lite0, ImageNet weights, 2 epochs on flowers128 at 96 px):
    MediaPipe resizes the 128 px photos itself, so near ties may differ; >= 95 % agree."""
    from edgecls.data.split import Split
    from edgecls.export.pipeline import ExportConfig, export_run

    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "edgecls", "train", "--data", str(shared_dir / "data" / "flowers128" / "all"),
                    "--out", str(run), "--model", "efficientnet_lite0", "--weights", "imagenet",
                    "--img-size", "96", "--epochs", "2", "--no-progress"], check=True, timeout=7200)
    export_run(run, ExportConfig(out=tmp_path / "export", formats=["tflite"], precisions=list(PRECISIONS)))
    exported = {p: tmp_path / "export" / f"model_{p}.tflite" for p in PRECISIONS}
    split = Split.load(run / "split.json")
    folder = tmp_path / "images" / "all"  # edgecls run reads one folder: 200 test images
    folder.mkdir(parents=True)
    for i, (path, _) in enumerate(split.items("test")[:200]):
        (folder / f"{i:04d}{path.suffix}").symlink_to(path.resolve())
    images = sorted(folder.iterdir())
    check_against_mediapipe(exported, images, split.labels, tmp_path)


def test_second_reader_reads_our_metadata(exported: dict[str, Path]) -> None:
    """MediaPipe's flatc-generated reader of metadata_schema.fbs, not our parser."""
    result = run_client("read", {"models": [str(p) for p in exported.values()]})
    for precision, model in exported.items():
        meta = result[str(model)]
        assert meta["identifier"] and meta["min_parser_version"] == "1.0.0"
        assert {"TFLITE_METADATA", "edgecls"} <= set(meta["entries"])
        assert meta["inputs"] == 1 and meta["outputs"] == 1
        assert meta["content_type"] == meta["image_properties"] and meta["color_space_rgb"]
        assert meta["default_size"] == [SIZE, SIZE]
        float_input = precision != "int8"
        assert meta["normalization"] == ([[0.0], [1.0]] if float_input else None), precision
        assert meta["label_file"] == "labels.txt" and meta["label_file_type_is_axis_labels"]
        assert meta["labels"] == sorted(CLASSES)
