"""Data-check behaviour on data that does not look like ours: phone JPEGs, rotated photos,
mixed orientations, imbalance (regressions found by running the CLI as a newcomer)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from edgecls.data.check import check_dataset
from edgecls.data.jpeg import is_complete_jpeg
from edgecls.errors import DataError
from helpers.cli import edgecls, run_cli
from helpers.images import write_image_folder


def _jpeg(shape: tuple[int, int] = (48, 64), progressive: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    assert ok
    return data.tobytes()


def _video_trailer() -> bytes:
    """Bytes that follow the image in a phone's motion photo (an MP4 box, then data)."""
    return b"\x00\x00\x00\x18ftypmp42" + bytes(range(1, 200)) * 20


def _with_thumbnail(main: bytes, thumbnail: bytes) -> bytes:
    """``main`` with an APP1 segment holding a whole JPEG (end marker included), as EXIF
    thumbnails do."""
    payload = b"Exif\x00\x00" + thumbnail
    return main[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + main[2:]


def test_complete_jpegs_with_trailers_pass_and_truncated_ones_fail():
    plain, progressive = _jpeg(), _jpeg(progressive=True)
    assert is_complete_jpeg(plain) and is_complete_jpeg(progressive)
    motion_photo = plain + _video_trailer()
    assert is_complete_jpeg(motion_photo)
    with_thumb = _with_thumbnail(plain, _jpeg((8, 8)))
    assert is_complete_jpeg(with_thumb)
    cut_after_thumbnail = with_thumb[: len(with_thumb) - len(plain) // 2]
    assert not is_complete_jpeg(cut_after_thumbnail)  # the thumbnail's end marker is not the image's
    for data in (plain, progressive):
        assert not any(is_complete_jpeg(data[:n]) for n in (2, 40, len(data) // 2, len(data) - 1))


def test_phone_jpeg_with_appended_video_is_usable(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 5, "b": 5})
    (root / "a" / "motion.jpg").write_bytes(_jpeg() + _video_trailer())
    data = check_dataset(root).to_json()
    assert data["unreadable"] == [] and data["classes"]["a"] == 6


def test_sizes_are_reported_as_displayed_and_not_invented(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 3, "b": 3})
    for i in range(4):  # 80 wide x 60 high, as displayed
        Image.new("RGB", (80, 60), (i, 0, 0)).save(root / "a" / f"land{i}.jpg")
        exif = Image.Exif()
        exif[0x0112] = 6  # stored 60x80, displayed rotated 90 degrees: 80 wide, 60 high
        Image.new("RGB", (60, 80), (0, i, 0)).save(root / "b" / f"rot{i}.jpg", exif=exif.tobytes())
    report = check_dataset(root)
    sizes = report.to_json()["common_sizes_hw"]
    assert sizes[0] == {"hw": [60, 80], "count": 8}


def test_imbalance_warning_names_the_method_training_uses(tmp_path):
    root = write_image_folder(tmp_path / "d", {"big": 60, "small": 6})
    warning = next(w for w in check_dataset(root).warnings if "imbalanced" in w)
    assert "logit adjustment" in warning and "class weights" not in warning


def test_one_class_folder_passed_as_the_dataset_says_what_to_pass(tmp_path):
    root = write_image_folder(tmp_path / "d", {"cats": 6}) / "cats"
    (root / "more").mkdir()
    for path in sorted(root.glob("*"))[:2]:
        if path.is_file():
            path.rename(root / "more" / path.name)
    report = check_dataset(root)
    assert "1 class folder(s) and 4 image(s) of its own" in report.errors[0]
    with pytest.raises(DataError) as caught:
        report.raise_for_errors()
    assert "the folder above it" in caught.value.hint


def test_images_outside_class_folders_are_reported(tmp_path):
    root = write_image_folder(tmp_path / "d", {"a": 4, "b": 4})
    cv2.imwrite(str(root / "stray.png"), np.zeros((8, 8, 3), np.uint8))
    report = check_dataset(root)
    assert report.to_json()["outside_classes"] == ["stray.png"]
    assert any("belong to no class folder" in w for w in report.warnings)
    with pytest.raises(DataError, match="holds 4 image"):
        check_dataset(root / "a")  # a folder of images without class folders


def test_train_refuses_a_bad_data_folder_before_tensorflow_loads(tmp_path):
    """Without TensorFlow importable at all, the layout errors still come out as one line
    (the three folders in one fresh process, each through the entry point)."""
    root = write_image_folder(tmp_path / "d", {"cats": 4}) / "cats"
    code = ("import contextlib, io, json, sys\n"
            "for name in ('tensorflow', 'keras'):\n"
            "    sys.modules[name] = None\n"
            "from edgecls.cli import main\n"
            "out, results = sys.argv[1], []\n"
            "for data in sys.argv[2:]:\n"
            "    sys.argv, err = ['edgecls', 'train', '--data', data, '--out', out], io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        try:\n"
            "            main()\n"
            "        except SystemExit as exit_info:\n"
            "            results.append([exit_info.code, err.getvalue()])\n"
            "print(json.dumps(results))\n")
    expected = {root: "holds 4 image(s) but no class sub-folders", root / "cats_0000.png": "is not a folder",
                tmp_path / "missing": "does not exist"}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run"), *map(str, expected)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    assert len(results) == len(expected), results
    for (exit_code, stderr), message in zip(results, expected.values()):
        assert exit_code == 2, stderr[-2000:]
        assert stderr.startswith("error:") and message in stderr, stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_out_folder_inside_the_dataset(tmp_path, monkeypatch, capsys):
    data = write_image_folder(tmp_path / "d", {"cats": 3, "dogs": 3})
    proc = edgecls("train", "--data", str(data), "--out", str(data))  # stderr on its own
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error:") and "inside the dataset folder" in proc.stderr
    for out in (data / "run", data / "cats" / "run"):
        code, output = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--out", str(out))
        assert code == 2, output[-2000:]
        assert output.startswith("error:") and "inside the dataset folder" in output
    assert not (data / "run").exists() and not (data / "cats" / "run").exists()
    assert sorted(p.name for p in data.iterdir()) == ["cats", "dogs"]


def _gif(path):
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path, format="GIF")
    return path


def test_images_in_a_format_we_do_not_read_are_named_as_such(tmp_path):
    """Issue 24: a GIF among JPEGs was called a "non-image file"; a HEIC named .jpg was
    "not an image". Both say which format they are and what to do."""
    root = write_image_folder(tmp_path / "d", {"ants": 4, "bees": 4})
    _gif(root / "ants" / "moving.gif")
    _gif(root / "bees" / "renamed.jpg")
    (root / "bees" / "phone.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (root / "ants" / "notes.txt").write_text("a note")
    report = check_dataset(root)
    data = report.to_json()
    assert data["unsupported_images"] == {
        "ants/moving.gif": "unsupported image format GIF: convert to JPEG/PNG to use it",
        "bees/phone.jpg": "unsupported image format HEIC: convert to JPEG/PNG to use it",
        "bees/renamed.jpg": "unsupported image format GIF: convert to JPEG/PNG to use it"}
    assert data["non_images"] == ["ants/notes.txt"] and data["unreadable"] == []
    assert "3 image(s) in a format edgecls does not read excluded (GIF, HEIC): convert them " \
           "to JPEG/PNG to use them" in report.warnings
    proc = edgecls("data", "check", str(root), env={"COLUMNS": "200"})
    assert "ants/moving.gif: unsupported image format GIF: convert to JPEG/PNG" in proc.stdout
    assert "moving.gif" not in proc.stdout.split("non-image files")[-1]


def test_train_shows_the_split_and_what_the_data_check_excluded(tmp_path):
    """Training on a folder with a broken file and a small class said nothing about them:
    the user saw them only by running `edgecls data check` separately; nor did it say the
    input size it chose from the data (only config.yaml had it), or name a GIF it left out."""
    from typer.testing import CliRunner

    from edgecls.cli import app
    from helpers.runs import TINY  # registers the tiny CNN family

    root = write_image_folder(tmp_path / "d", {"big": 24, "small": 6})
    (root / "big" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(200)))
    _gif(root / "small" / "moving.gif")
    result = CliRunner().invoke(app, ["train", "--data", str(root), "--model", TINY,
                                      "--epochs", "1", "--batch-size", "16", "--out",
                                      str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "data: " in result.output and "val" in result.output and "in 2 classes" in result.output
    assert "1 unreadable file(s) excluded" in result.output
    assert "class 'small' is small" in result.output
    assert "1 image(s) in a format edgecls does not read excluded (GIF)" in result.output
    model_line = next(line for line in result.output.splitlines() if line.startswith("model "))
    assert model_line.startswith(f"model {TINY}, weights none") and model_line.endswith(
        "; input 128x128 px (from the data: median shorter side 32 px of 30 images, clamped to 128-224)")
