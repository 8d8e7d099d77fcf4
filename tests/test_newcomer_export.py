"""Export on a newcomer's small dataset: no remedies chasing one image, and none of the
converters' own log lines on the terminal (regressions found by running the CLI as a
newcomer on a ~300-image folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecls.export.pipeline import why_no_remedies
from edgecls.stats import DropBudget
from helpers.export import Prepared
from helpers.gate import two_class_validation as _validation

CONVERTER_CHATTER = ("fully_quantize", "tf2onnx", "--tag' not specified", "INFO:nncf", "Reverted",
                     "Accuracy drop", "Metric of")


def test_one_lost_image_gets_no_remedies_but_a_real_loss_does():
    one = _validation(58, lost=1, gained=0)
    assert one.drop_pp > 1.0  # over a 1 pp budget on 58 images
    assert "one image" in why_no_remedies(one)
    assert why_no_remedies(_validation(58, lost=2, gained=1)) is not None  # net one
    assert why_no_remedies(_validation(58, lost=3, gained=0)) is None
    assert why_no_remedies(_validation(58, lost=4, gained=1)) is None


def _export(prepared: Prepared, fmt: str, path: Path, **options) -> None:
    from edgecls.export.base import QuantizationConfig, get_exporter

    quant = QuantizationConfig.for_int8(prepared.calibration.astype(np.uint8), **options)
    get_exporter(fmt).export(prepared.source, quant, path)


def test_int8_exports_print_nothing_of_their_own(prepared: Prepared, tmp_path: Path, capfd) -> None:
    capfd.readouterr()
    _export(prepared, "tflite", tmp_path / "m.tflite")
    _export(prepared, "onnx", tmp_path / "m.onnx")
    images = prepared.images[1::2].astype(np.uint8)
    _export(prepared, "openvino", tmp_path / "m.xml", method="accuracy_control", max_drop=DropBudget(0.0),
            validation=(images, prepared.labels[1::2]))
    out, err = capfd.readouterr()
    leaked = [word for word in CONVERTER_CHATTER if word in out + err]
    assert not leaked, (out + err)[-3000:]


def test_a_split_made_from_a_relative_data_path_is_found_from_any_folder(tmp_path: Path,
                                                                         monkeypatch) -> None:
    """`edgecls train --data data` stored the root as "data": an export from another folder
    then died on a FileNotFoundError traceback."""
    from edgecls.data.split import Split, prepare_split
    from helpers.images import write_image_folder

    write_image_folder(tmp_path / "data", {"circle_r": 6, "square_g": 6})
    monkeypatch.chdir(tmp_path)
    prepare_split("data", tmp_path / "run")
    monkeypatch.chdir(tmp_path / "run")
    root = Split.load(tmp_path / "run" / "split.json").root
    assert root.is_absolute() and root == (tmp_path / "data").resolve()


def test_export_of_a_run_whose_dataset_is_gone_is_one_line(tiny_runs, tmp_path: Path, monkeypatch,
                                                             capsys) -> None:
    import json

    from helpers.cli import run_cli

    run = tiny_runs.copy(tmp_path, epochs=2)
    manifest = json.loads((run / "split.json").read_text())
    manifest["root"] = "data_moved_away"
    (run / "split.json").write_text(json.dumps(manifest))
    code, text = run_cli(monkeypatch, capsys, "export", str(run), "--formats", "tflite",
                         "--precision", "fp32")
    assert code == 2 and "dataset folder data_moved_away is not there" in text, text
    assert "Traceback" not in text
