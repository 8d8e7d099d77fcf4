"""Without an fp32 artifact, bench and report compare with the float model's top-1 from the
export's predictions.json, on exactly the images bench scored."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.tiny_models import COLOR_LABELS, TinyNet, make_onnx, tiny_metadata

from edgecls.bench.columns import COLUMNS, baseline_notes, cells, headers
from edgecls.bench.report import merge_records
from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.data.check import check_dataset
from edgecls.data.fingerprint import file_digest, unit_hash
from edgecls.data.split import hash_rule, make_split
from edgecls.digest import file_sha256
from edgecls.export.predictions import PREDICTIONS_NAME, HeldOutPredictions
from helpers.bench import QUICK
from helpers.images import write_color_folder

NET = TinyNet()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """An INT8 artifact of a run over a colour folder, with the export's predictions.json
    where the float model got the first two held-out images wrong."""
    root = tmp_path_factory.mktemp("export_float")
    data = write_color_folder(root / "colors", per_class=20)
    split = make_split(check_dataset(data))
    meta = tiny_metadata(NET, precision="int8", extra={"run": "r", "split": hash_rule(split)})
    (root / "export").mkdir()
    model = make_onnx(root / "export" / "model_int8.onnx", NET, meta, quantized=True)
    held_out = split.items("val") + split.items("test")
    labels = [COLOR_LABELS.index(split.labels[label]) for _, label in held_out]
    float_probs = np.eye(3)[labels]
    scored = [i for i, (path, _) in enumerate(held_out) if unit_hash(file_digest(path), 0) >= 0.8]
    missed = scored[:2]  # the float model got these two wrong
    float_probs[missed] = np.roll(float_probs[missed], 1, axis=1)
    predictions = HeldOutPredictions.from_float(data, [(p, c) for (p, _), c in zip(held_out, labels)],
                                                ["val"] * len(held_out), COLOR_LABELS, float_probs)
    predictions.add(model.name, file_sha256(model), np.ones(len(held_out), bool), np.array(labels),
                    np.ones(len(held_out)))
    (model.parent / PREDICTIONS_NAME).write_text(predictions.to_json())
    return data, model, [Path(held_out[i][0]).relative_to(data).as_posix() for i in missed]


def test_report_compares_int8_with_the_float_predictions_on_the_same_images(export_dir) -> None:
    data, model, missed = export_dir
    report = run_bench([model], BenchOptions(data=data, **QUICK))
    accuracy = report["records"][0]["accuracy"]
    images = accuracy["images"]
    assert accuracy["top1"] == 1.0 and accuracy["float"]["images"] == images
    assert accuracy["float"]["top1"] == pytest.approx((images - 2) / images, abs=1e-6)
    assert set(missed) <= set(accuracy["selection"]["files"])
    row = merge_records([report]).rows[0]
    assert row.drop_pp == pytest.approx(-100 * 2 / images, abs=1e-3)
    assert row.paired.counts.wrong_to_right == 2 and row.paired.counts.right_to_wrong == 0
    row_cells = dict(zip(headers(COLUMNS), cells(row, COLUMNS)))
    assert row_cells["drop vs float"] == f"{-200 / images:+.2f}pp"  # a gain of 2 images: minus
    assert row_cells["drop vs float 95%"].startswith("[-")
    assert baseline_notes([row]) == [f"{model.name}: drop vs the float model on the same {images} "
                                     "images (export's predictions.json)"]


def test_no_float_baseline_when_the_predictions_are_not_of_this_artifact(export_dir, tmp_path: Path) -> None:
    data, model, _ = export_dir
    other = make_onnx(tmp_path / "model_int8.onnx", NET, tiny_metadata(NET, precision="int8"), quantized=True)
    (tmp_path / PREDICTIONS_NAME).write_text((model.parent / PREDICTIONS_NAME).read_text())
    assert file_sha256(other) != file_sha256(model)
    record = run_bench([other], BenchOptions(data=data, **QUICK))["records"][0]
    assert "float" not in record["accuracy"]


def test_device_records_get_the_float_baseline_through_the_sample_they_scored(export_dir, tmp_path: Path) -> None:
    from edgecls.bench.dataset import load_labelled_images
    from edgecls.remote.bench import attach_export_float
    from edgecls.remote.sample import sample_images

    data, model, _ = export_dir
    images = load_labelled_images(data)
    files = sample_images(images, 50, "data")
    device = tmp_path / "device"  # the sample as the device receives it, and the model copied there
    for name, path in files.items():
        (device / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, device / name)
    (device / "models").mkdir()
    shutil.copyfile(model, device / "models" / model.name)
    record = run_bench([device / "models" / model.name], BenchOptions(data=device / "data", **QUICK))["records"][0]
    assert "float" not in record["accuracy"]  # no predictions.json on the device
    record["model"] = str(model)  # as merge_host_reports records it: the local artifact
    attach_export_float([record], files, "data", images)
    images_scored = record["accuracy"]["images"]  # the held-out ones, two of which the float model missed
    assert record["accuracy"]["float"]["top1"] == pytest.approx((images_scored - 2) / images_scored, abs=1e-6)
