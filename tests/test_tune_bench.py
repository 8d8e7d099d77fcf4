"""The tune benchmark's own logic (no training): hand-pick names, reuse of a finished
model's figures on a second run, and the same-test-images check before pairing."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tune_flowers.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("tune_flowers_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pick_names_parse_to_family_size_and_mac_reduction(bench) -> None:
    assert bench.parse_pick("lite0-96") == ("efficientnet_lite0", 96, 0.0)
    assert bench.parse_pick("lite1-128-mac30") == ("efficientnet_lite1", 128, 0.3)
    assert [bench.parse_pick(name) for name in bench.HAND_PICKS.split(",")] == [
        ("efficientnet_lite0", 96, 0.0), ("efficientnet_lite0", 128, 0.3), ("efficientnet_lite1", 96, 0.0)]
    with pytest.raises(SystemExit, match="b0-96"):
        bench.parse_pick("b0-96")


def test_a_finished_model_is_reused_with_its_training_time(bench, tmp_path: Path) -> None:
    figures = {"family": "efficientnet_lite0", "size": 128, "mac": 0.0, "artifact": "a.tflite", "p50_ms": 2.0,
               "seconds": 206.0, "val_accuracy": 0.75, "test_images": ["x.jpg", "y.jpg"], "test": [True, False]}
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    args = argparse.Namespace(data=tmp_path / "absent", epochs=6, bench_rounds=5)
    model = bench.model_figures(args, tmp_path, "efficientnet_lite0", None, 0.0)  # would train, and fail, otherwise
    assert model["seconds"] == 206.0  # the search's time budget derives from it
    assert model["test"].dtype == bool and model["test"].tolist() == [True, False]


def test_models_tested_on_other_images_are_not_paired(bench) -> None:
    same = [{"test_images": ["a", "b"], "test": np.array([True, False])} for _ in range(2)]
    bench.check_same_test_images(same)
    with pytest.raises(SystemExit, match="different test splits"):
        bench.check_same_test_images([*same, {"test_images": ["b", "a"]}])
