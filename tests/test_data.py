"""Dataset scan, check, split and input pipeline."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgecls.data.check import check_dataset
from edgecls.data.split import Split, make_split, prepare_split
from edgecls.errors import DataError
from helpers.cli import edgecls
from helpers.images import write_image_folder


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True)


def test_check_counts_and_json_keys(image_folder):
    report = check_dataset(image_folder)
    data = report.to_json()
    assert data["classes"] == {"circle_b": 20, "circle_r": 20, "square_g": 20}
    assert data["unreadable"] == [] and data["duplicates_across_classes"] == []
    assert data["schema_version"] == 1 and not report.errors


def test_bad_files_are_excluded_and_listed(image_folder):
    (image_folder / "circle_r" / "notes.jpg").write_text("this is text, not a JPEG")
    (image_folder / "circle_r" / "empty.png").write_bytes(b"")
    ok, jpeg = cv2.imencode(".jpg", np.full((32, 32, 3), 127, np.uint8))
    (image_folder / "square_g" / "cut.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    (image_folder / "square_g" / "readme.txt").write_text("hello")
    data = check_dataset(image_folder).to_json()
    assert sorted(data["unreadable"]) == ["circle_r/empty.png", "circle_r/notes.jpg", "square_g/cut.jpg"]
    assert "truncated" in data["unreadable_reasons"]["square_g/cut.jpg"]
    assert data["non_images"] == ["square_g/readme.txt"]
    assert data["classes"]["circle_r"] == 20 and data["classes"]["square_g"] == 20


def test_duplicates_within_and_across_classes(image_folder):
    src = image_folder / "circle_r" / "circle_r_0000.png"
    shutil.copy(src, image_folder / "circle_r" / "copy.png")
    shutil.copy(image_folder / "square_g" / "square_g_0001.png", image_folder / "circle_b" / "stray.png")
    report = check_dataset(image_folder)
    data = report.to_json()
    assert data["duplicates_within_class"] == [["circle_r/circle_r_0000.png", "circle_r/copy.png"]]
    assert data["duplicates_across_classes"] == [["circle_b/stray.png", "square_g/square_g_0001.png"]]
    assert data["classes"] == {"circle_b": 20, "circle_r": 20, "square_g": 19}


def test_grayscale_and_rgba_images_are_usable(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 5, "b": 5})
    cv2.imwrite(str(root / "a" / "gray.png"), np.zeros((20, 30), np.uint8))
    cv2.imwrite(str(root / "b" / "rgba.png"), np.zeros((20, 30, 4), np.uint8) + 9)
    cv2.imwrite(str(root / "b" / "x.webp"), np.zeros((16, 16, 3), np.uint8) + 50)
    cv2.imwrite(str(root / "b" / "x.bmp"), np.zeros((16, 16, 3), np.uint8) + 80)
    report = check_dataset(root)
    assert report.class_counts == {"a": 6, "b": 8} and not report.unreadable


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("empty", "empty"),
    ("single", "at least 2"),
    ("all_unreadable", "no readable images"),
    ("tiny", "too few to split"),
])
def test_fatal_dataset_problems(tmp_path, case, message):
    root = tmp_path / "d"
    if case != "missing":
        root.mkdir()
    if case == "single":
        write_image_folder(root, {"only": 5})
    if case == "all_unreadable":
        write_image_folder(root, {"good": 5})
        (root / "bad").mkdir()
        (root / "bad" / "a.jpg").write_text("nope")
    if case == "tiny":
        write_image_folder(root, {"a": 5, "b": 2})
    with pytest.raises(DataError, match=message):
        check_dataset(root).raise_for_errors()


def test_split_is_stratified_deterministic_and_stable_when_adding_files(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 60, "b": 40})
    first = make_split(check_dataset(root), seed=3)
    again = make_split(check_dataset(root), seed=3)
    assert first.subsets == again.subsets
    counts = first.counts()
    for label, total in (("a", 60), ("b", 40)):
        assert sum(counts[s][label] for s in counts) == total
        assert counts["val"][label] >= 1 and counts["test"][label] >= 1
        assert counts["train"][label] >= 0.6 * total
    write_image_folder(tmp_path / "more", {"a": 15, "b": 15}, seed=99)
    for label in ("a", "b"):
        for path in (tmp_path / "more" / label).iterdir():
            shutil.copy(path, root / label / f"new_{path.name}")
    grown = make_split(check_dataset(root), seed=3)
    before = {rel: s for s, entries in first.subsets.items() for rel, _ in entries}
    after = {rel: s for s, entries in grown.subsets.items() for rel, _ in entries}
    assert all(after[rel] == subset for rel, subset in before.items())
    assert len(after) == len(before) + 30


def test_split_save_load_roundtrip_and_prepare_reuses_it(tmp_path, image_folder):
    run = tmp_path / "run"
    split = prepare_split(image_folder, run, fractions=(0.6, 0.2, 0.2))
    assert (run / "labels.txt").read_text().split() == split.labels
    loaded = Split.load(run / "split.json")
    assert loaded.subsets == split.subsets and loaded.fractions == (0.6, 0.2, 0.2)
    write_image_folder(image_folder, {"circle_r": 30}, seed=5)  # more files appear later
    assert prepare_split(image_folder, run).subsets == split.subsets  # resume keeps the split
    assert all(path.is_file() for path, _ in loaded.items("test"))


def test_presplit_layout_without_test_uses_val_as_test(tmp_path):
    write_image_folder(tmp_path / "d" / "train", {"a": 30, "b": 30})
    write_image_folder(tmp_path / "d" / "val", {"a": 5, "b": 5}, seed=7)
    split = make_split(check_dataset(tmp_path / "d"))
    assert len(split.subsets["test"]) == 10
    assert all(rel.startswith("val/") for rel, _ in split.subsets["test"])
    assert split.subsets["val"] and all(rel.startswith("train/") for rel, _ in split.subsets["val"])
    assert split.notes


def test_bad_split_fractions(image_folder):
    with pytest.raises(DataError, match="sum to"):
        make_split(check_dataset(image_folder), fractions=(0.5, 0.1, 0.1))


def test_load_arrays_match_runtime_preprocessing(image_folder):
    from edgecls.data.pipeline import load_arrays
    from edgecls.runtime.preprocess import prepare, read_image_bgr

    items = [(p, 0) for p in sorted((image_folder / "circle_r").iterdir())[:4]]
    images, labels = load_arrays(items, (24, 40))
    assert images.shape == (4, 24, 40, 3) and images.dtype == np.uint8
    expected = prepare(read_image_bgr(items[2][0]), (24, 40))
    np.testing.assert_array_equal(images[2], expected.astype(np.uint8))
    assert labels.tolist() == [0, 0, 0, 0]


def test_dataset_pipeline_training_and_eval(image_folder):
    from edgecls.data.pipeline import make_dataset

    split = make_split(check_dataset(image_folder))
    items = split.items("train")
    eval_a = np.concatenate([x.numpy() for x, _ in make_dataset(items, (32, 32), 8, training=False)])
    eval_b = np.concatenate([x.numpy() for x, _ in make_dataset(items, (32, 32), 8, training=False)])
    np.testing.assert_array_equal(eval_a, eval_b)  # no augmentation, no shuffle
    streamed = np.concatenate([x.numpy() for x, _ in make_dataset(items, (32, 32), 8, False, memory_budget=0)])
    np.testing.assert_allclose(streamed, eval_a, atol=1)  # same size: identical up to rounding
    x, y = next(iter(make_dataset(items, (32, 32), 8, training=True)))
    assert x.shape == (8, 32, 32, 3) and x.dtype.name == "float32" and y.dtype.name == "int32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 255.0


def test_cli_check_writes_json_and_fails_on_fatal(tmp_path, image_folder):
    out = tmp_path / "r.json"
    result = run_cli("data", "check", str(image_folder), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["classes"]["square_g"] == 20
    result = edgecls("data", "check", str(tmp_path / "nope"))  # in-process: same entry point
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_flowers_duplicate_groups(shared_dir):
    data = check_dataset(shared_dir / "data" / "flowers128" / "all").to_json()
    across = data["duplicates_across_classes"]
    assert len(across) == 4
    assert all({p.split("/")[0] for p in group} == {"rose", "tulip"} for group in across)
    assert len(data["duplicates_within_class"]) == 2
