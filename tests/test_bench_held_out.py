"""`edgecls bench --data FOLDER` scores only what each model's run held out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.data.check import check_dataset
from edgecls.data.fingerprint import HASH_RULE, file_digest, unit_hash
from edgecls.data.split import hash_rule, make_split
from edgecls.runtime.metadata import ModelMetadata, split_rule
from helpers.bench import QUICK
from helpers.images import write_color_folder

NET = TinyNet()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_color_folder(tmp_path_factory.mktemp("held_out") / "colors", per_class=20)


def _model(root: Path, rule: dict | None, name: str) -> Path:
    extra = {"run": "tiny-run", **({"split": rule} if rule else {})}
    return make_onnx(root / name, NET, tiny_metadata(NET, extra=extra))


def test_bench_scores_only_the_files_the_run_held_out(folder: Path, tmp_path: Path) -> None:
    split = make_split(check_dataset(folder), seed=3)
    rule = hash_rule(split)
    assert rule["held_out_from"] == 0.8 and rule["salt"] == 3 and rule["hash"] == HASH_RULE
    model = _model(tmp_path, rule, "with_rule.onnx")
    record = run_bench([model], BenchOptions(data=folder, **QUICK))["records"][0]
    assert record["status"] == "passed", record["reason"]
    selection = record["accuracy"]["selection"]
    held_out = {rel for name in ("val", "test") for rel, _ in split.subsets[name]}
    assert selection["mode"] == "held_out" and selection["held_out_known"]
    assert set(selection["files"]) == held_out
    assert selection["images_given"] == 60
    assert selection["excluded_as_training"] == len(split.subsets["train"])
    assert record["accuracy"]["images"] == len(held_out)
    low, high = record["accuracy"]["top1_interval"]
    assert low < record["accuracy"]["top1"] <= high == 1.0


def test_a_model_without_split_rule_is_scored_on_everything_with_a_warning(
        folder: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from edgecls.cli.bench import _warn_about_selection

    model = _model(tmp_path, None, "no_rule.onnx")
    record = run_bench([model], BenchOptions(data=folder, **QUICK))["records"][0]
    selection = record["accuracy"]["selection"]
    assert selection["mode"] == "all" and selection["held_out_known"] is False
    assert record["accuracy"]["images"] == 60
    console = Console(record=True, width=200)
    _warn_about_selection([record], console)
    text = console.export_text()
    assert "WARNING" in text and "optimistic" in text


def _presplit(root: Path, subsets: dict[str, range]) -> Path:
    """A pre-split dataset of distinct colour images: image i of each class goes to the subset whose range has i."""
    flat = write_color_folder(root / "flat", per_class=max(r.stop for r in subsets.values()))
    for image in flat.glob("*/*.png"):
        index = int(image.stem.rsplit("_", 1)[1])
        subset = next(name for name, indices in subsets.items() if index in indices)
        (root / "ds" / subset / image.parent.name).mkdir(parents=True, exist_ok=True)
        image.rename(root / "ds" / subset / image.parent.name / image.name)
    return root / "ds"


def _bench_selection(model: Path, data: Path) -> dict:
    record = run_bench([model], BenchOptions(data=data, **QUICK))["records"][0]
    assert record["status"] == "passed", record["reason"]
    return record["accuracy"]["selection"]


def test_a_presplit_run_tells_held_out_files_by_its_folders_and_carve(tmp_path: Path) -> None:
    data = _presplit(tmp_path, {"train": range(0, 16), "val": range(16, 20)})
    split = make_split(check_dataset(data), seed=2)
    rule = hash_rule(split)
    assert rule["held_out_from"] is None and rule["trained_folder"] == "train"
    assert rule["carve_from"] == pytest.approx(0.8 / 0.9)
    model = _model(tmp_path, rule, "presplit.onnx")
    on_dataset = _bench_selection(model, data)  # scores val/, the run's test split
    assert on_dataset["mode"] == "held_out" and on_dataset["held_out_known"] and "warning" not in on_dataset
    assert set(on_dataset["files"]) == {rel for rel, _ in split.subsets["test"]}
    on_train = _bench_selection(model, data / "train")  # only what was carved into val by its hash
    carved = {rel for rel, _ in split.subsets["val"]
              if unit_hash(file_digest(data / rel), 2) >= rule["carve_from"]}
    assert carved and {f"train/{rel}" for rel in on_train["files"]} == carved
    assert on_train["images_used"] == len(carved) and on_train["images_given"] == 16 * 3


def test_a_run_given_all_three_folders_trained_on_all_of_train(tmp_path: Path) -> None:
    data = _presplit(tmp_path, {"train": range(0, 6), "val": range(6, 8), "test": range(8, 10)})
    rule = hash_rule(make_split(check_dataset(data)))
    assert rule["trained_folder"] == "train" and rule["carve_from"] is None
    meta = ModelMetadata(labels=["a"], input_size=(4, 4), extra={"split": rule})
    assert split_rule(meta)["carve_from"] is None
    model = _model(tmp_path, rule, "three.onnx")
    assert len(_bench_selection(model, data)["files"]) == 6  # test/
    flat = write_color_folder(tmp_path / "elsewhere", per_class=2)  # no subset folder: cannot tell
    elsewhere = _bench_selection(model, flat)
    assert elsewhere["mode"] == "all" and "train/ folder of a pre-split dataset" in elsewhere["warning"]


def test_a_device_sample_is_named_after_the_subset_it_comes_from(folder: Path, tmp_path: Path) -> None:
    from edgecls.bench.dataset import load_labelled_images
    from edgecls.remote.bench import sample_folder

    data = _presplit(tmp_path, {"train": range(0, 3), "val": range(3, 5)})
    assert sample_folder(load_labelled_images(data)) == "val"  # the device tells it held out by name
    assert sample_folder(load_labelled_images(data / "train")) == "train"
    assert sample_folder(load_labelled_images(folder)) == "data"


def test_an_older_presplit_artifact_still_reads_as_carrying_no_rule() -> None:
    old = {"salt": 0, "fractions": [0.8, 0.1, 0.1], "held_out_from": None, "hash": HASH_RULE}
    meta = ModelMetadata.from_json(json.dumps({"labels": ["a"], "input_size": [4, 4],
                                               "extra": {"split": old}}))
    assert split_rule(meta) is None


@pytest.mark.parametrize("rule", [None, "x", {"salt": "0", "held_out_from": 0.8},
                                  {"salt": 0, "held_out_from": 1.5}, {"salt": True, "held_out_from": 0.8},
                                  {"salt": 0, "held_out_from": None, "trained_folder": "", "carve_from": None},
                                  {"salt": 0, "held_out_from": None, "trained_folder": "train", "carve_from": 2}])
def test_malformed_split_rules_are_refused(rule) -> None:
    meta = ModelMetadata(labels=["a"], input_size=(4, 4), extra={"split": rule})
    assert split_rule(meta) is None


def test_report_pairs_int8_with_its_fp32_twin_image_by_image(folder: Path, tmp_path: Path) -> None:
    from edgecls.bench.columns import COLUMNS, cells, headers
    from edgecls.bench.report import merge_records

    rule = hash_rule(make_split(check_dataset(folder)))
    meta = {"extra": {"run": "tiny-run", "split": rule}, "model_name": "tiny"}
    fp32 = make_onnx(tmp_path / "m_fp32.onnx", NET, tiny_metadata(NET, precision="fp32", **meta))
    int8 = make_onnx(tmp_path / "m_int8.onnx", NET, tiny_metadata(NET, precision="int8", **meta),
                     quantized=True)
    report = run_bench([fp32, int8], BenchOptions(data=folder, **QUICK))
    rows = {r.record["precision"]: r for r in merge_records([report]).rows}
    paired = rows["int8"].paired
    assert paired is not None and paired.counts.images == rows["int8"].record["accuracy"]["images"]
    row_cells = dict(zip(headers(COLUMNS), cells(rows["int8"], COLUMNS)))
    assert row_cells["changed -/+"] == f"-{paired.counts.right_to_wrong}/+{paired.counts.wrong_to_right}"
    assert row_cells["drop vs float 95%"].startswith("[") and row_cells["top-1 95%"].startswith("[")
