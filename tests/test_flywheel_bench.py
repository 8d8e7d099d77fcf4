"""The flywheel benchmark's own logic (no training): its split, its labelling order, its pooled
uncertainty-vs-random difference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "flywheel.py"


@pytest.fixture(scope="module")
def flywheel():
    spec = importlib.util.spec_from_file_location("flywheel_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _images(counts: dict[str, int]) -> list[tuple[str, Path]]:
    return [(name, Path(f"/d/{name}/{i:03d}.jpg")) for name, n in counts.items() for i in range(n)]


def test_split_is_disjoint_stratified_and_seeded(flywheel) -> None:
    images = _images({"a": 100, "b": 40})
    parts = flywheel.plan_split(images, seed=3, test=0.2, initial=0.15)
    paths = [path for part in parts.values() for _, path in part]
    assert sorted(paths) == sorted(path for _, path in images)  # every image once
    assert [n for n, _ in parts["test"]].count("a") == 20 and [n for n, _ in parts["test"]].count("b") == 8
    assert [n for n, _ in parts["initial"]].count("a") == 15 and [n for n, _ in parts["initial"]].count("b") == 6
    assert parts == flywheel.plan_split(list(reversed(images)), seed=3, test=0.2, initial=0.15)
    assert parts["test"] != flywheel.plan_split(images, seed=4, test=0.2, initial=0.15)["test"]


def test_random_labels_in_stream_order_uncertainty_in_review_order(flywheel) -> None:
    review_order = ["c.jpg", "a.jpg", "b.jpg"]  # the page's: smallest margin first
    sidecars = {"a.jpg": {"frame": 1}, "b.jpg": {"frame": 7}, "c.jpg": {"frame": 30}}
    assert flywheel.labelling_order(review_order, sidecars, "uncertainty") == review_order
    assert flywheel.labelling_order(review_order, sidecars, "random") == ["a.jpg", "b.jpg", "c.jpg"]


def test_pooled_difference_pairs_each_seed_with_its_own_images(flywheel) -> None:
    one = flywheel.uncertainty_vs_random([("1100", "1000")])
    assert one["pp"] == pytest.approx(25.0) and one["turned_right"] == 1 and one["turned_wrong"] == 0
    pooled = flywheel.uncertainty_vs_random([("1100", "1000"), ("0011", "0111")])
    assert pooled["images"] == 8 and pooled["pp"] == pytest.approx(0.0)
    assert pooled["turned_right"] == 1 and pooled["turned_wrong"] == 1
    assert pooled["low"] < 0 < pooled["high"]
