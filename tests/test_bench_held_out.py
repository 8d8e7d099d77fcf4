"""`edgecls bench --data FOLDER` scores only what each model's run held out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.data.check import check_dataset
from edgecls.data.fingerprint import HASH_RULE
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


def test_a_presplit_run_carries_no_usable_rule(tmp_path: Path) -> None:
    write_color_folder(tmp_path / "ds" / "train", per_class=6)
    write_color_folder(tmp_path / "ds" / "val", per_class=2)
    split = make_split(check_dataset(tmp_path / "ds"))
    rule = hash_rule(split)
    assert rule["held_out_from"] is None  # the folders, not the hash, chose the subsets
    meta = ModelMetadata.from_json(json.dumps({"labels": ["a"], "input_size": [4, 4],
                                               "extra": {"split": rule}}))
    assert split_rule(meta) is None


@pytest.mark.parametrize("rule", [None, "x", {"salt": "0", "held_out_from": 0.8},
                                  {"salt": 0, "held_out_from": 1.5}, {"salt": True, "held_out_from": 0.8}])
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
    assert row_cells["vs float 95%"].startswith("[") and row_cells["top-1 95%"].startswith("[")
