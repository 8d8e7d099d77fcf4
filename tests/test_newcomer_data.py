"""Data-check behaviour on data that does not look like ours: phone JPEGs, rotated photos,
mixed orientations, imbalance (regressions found by running the CLI as a newcomer)."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from edgecls.data.check import check_dataset
from edgecls.data.jpeg import is_complete_jpeg
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
