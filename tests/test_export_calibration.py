"""Calibration sampling and presets, and the validation metrics (no TensorFlow needed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls.data.calibration import (folder_calibration, list_presets, load_preset,
                                      sample_items)
from edgecls.errors import ConfigError, DataError
from edgecls.export.validate import compare
from edgecls.metrics import kl_divergence


def items(per_class: dict[int, int]) -> list[tuple[Path, int]]:
    return [(Path(f"{label}_{i}.png"), label) for label, n in per_class.items() for i in range(n)]


def test_balanced_sample_takes_an_equal_share_per_class() -> None:
    chosen = sample_items(items({0: 500, 1: 40, 2: 300}), 90, "balanced", seed=1)
    assert Counter(label for _, label in chosen) == {0: 30, 1: 30, 2: 30}
    assert len(set(chosen)) == 90


def test_balanced_sample_fills_up_from_larger_classes() -> None:
    chosen = sample_items(items({0: 100, 1: 5}), 40, "balanced")
    assert Counter(label for _, label in chosen) == {0: 35, 1: 5}


def test_sample_is_deterministic_per_seed() -> None:
    pool = items({0: 50, 1: 50})
    assert sample_items(pool, 20, seed=3) == sample_items(pool, 20, seed=3)
    assert sample_items(pool, 20, seed=3) != sample_items(pool, 20, seed=4)


def test_shipped_presets_load() -> None:
    assert {"default", "fast", "thorough"} <= set(list_presets())
    assert load_preset(None).count == 300
    assert load_preset("thorough").method("onnx") == "minmax"


def test_bad_presets_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="preset 'nope' not found"):
        load_preset("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("count: 10\nimages: 5\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_preset(bad)


def test_folder_calibration_skips_unreadable_files(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((20, 30, 3), 200, np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"broken")
    images = folder_calibration(tmp_path, (16, 16), count=10)
    assert images.shape == (1, 16, 16, 3) and images.dtype == np.float32
    (tmp_path / "a.png").unlink()
    with pytest.raises(DataError, match="no readable images"):
        folder_calibration(tmp_path, (16, 16), count=10)


def test_compare_metrics() -> None:
    float_probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]], np.float32)
    result = compare(probs, float_probs, np.array([0, 1, 0, 1]), ["a", "b"])
    assert result.float_accuracy == 1.0 and result.accuracy == 0.75
    assert result.agreement == 0.75 and result.drop_pp == pytest.approx(25.0)
    assert result.per_class_drop_pp == {"a": 50.0, "b": 0.0}
    assert not result.passed(1.0) and result.passed(25.0)
    assert kl_divergence(float_probs, float_probs) == pytest.approx(0.0, abs=1e-9)
    assert result.kl_divergence > 0
