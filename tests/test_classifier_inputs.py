"""``Classifier.classify`` takes a path, a PIL image, or an array with its colour order stated."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from helpers.tiny_models import TinyNet, color_frame, make_onnx, tiny_metadata

from edgecls.errors import DataError
from edgecls.runtime import Classifier

NET = TinyNet()
RED_RGB = (255, 0, 0)


@pytest.fixture(scope="module")
def clf(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    root = tmp_path_factory.mktemp("inputs")
    return Classifier(make_onnx(root / "m.onnx", NET, tiny_metadata(NET)))


def _rgb(color: tuple[int, int, int] = RED_RGB) -> np.ndarray:
    return np.broadcast_to(np.array(color, np.uint8), (24, 32, 3)).copy()


def _best(clf: Classifier, image, **kwargs) -> str:
    return clf.classify(image, **kwargs)[0][0]


def test_a_path_is_read_like_edgecls_run_reads_files(clf: Classifier, tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), color_frame("red"))
    assert _best(clf, str(path)) == "red" and _best(clf, path) == "red"
    with pytest.raises(DataError, match="does not exist"):
        clf.classify(str(tmp_path / "missing.jpg"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not an image file") as caught:
        clf.classify(tmp_path / "notes.txt")
    assert ".jpg" in caught.value.hint


def test_pil_images_keep_their_colours_whatever_their_mode(clf: Classifier) -> None:
    red = Image.fromarray(_rgb())
    assert _best(clf, red) == "red"
    assert _best(clf, red.convert("RGBA")) == "red"
    assert _best(clf, red, channels="bgr") == "red"  # a PIL image knows its own mode
    gray = clf.probabilities(Image.fromarray(np.full((8, 8), 200, np.uint8)))
    assert gray == pytest.approx(np.full(3, 1 / 3), abs=1e-3)  # gray: no colour wins


def test_arrays_follow_the_stated_channel_order(clf: Classifier) -> None:
    rgb = _rgb()
    assert _best(clf, rgb, channels="rgb") == "red"
    assert _best(clf, rgb) == "blue"  # the default stays "bgr" for existing callers
    assert _best(clf, np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), channels="rgb") == "red"
    assert _best(clf, rgb.astype(np.float32) / 255.0, channels="rgb") == "red"
    assert [p[0][0] for p in clf.classify_batch([rgb, Image.fromarray(rgb)], channels="rgb")] == ["red", "red"]
    gray = np.full((8, 8), 90, np.uint8)
    assert clf.probabilities(gray, channels="gray") == pytest.approx(clf.probabilities(gray[..., None]))


@pytest.mark.parametrize(("image", "channels", "message"), [
    (_rgb(), "hsv", "channels='hsv' is not one of"),
    (_rgb(), "gray", "channels='gray' does not fit"),
    (_rgb().astype(np.float32), "rgb", "must hold values in 0..1"),
    (_rgb().astype(np.int64), "rgb", "dtype int64 is not supported"),
    (np.zeros(12, np.uint8), "bgr", "is not an image"),
    (np.zeros((4, 4, 2), np.uint8), "bgr", "is not an image"),
    (12345, "bgr", "cannot classify a int"),
])
def test_what_is_not_an_image_is_a_clear_value_error(clf: Classifier, image, channels: str,
                                                     message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clf.classify(image, channels=channels)
