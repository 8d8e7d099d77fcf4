"""The pixel limit is checked from the image header, before decoding: a 20000x20000 PNG
(about 1 MB, 1.2 GB once decoded) is excluded by `data check` and training's split,
skipped by calibration and refused by `edgecls run` with one line, without ever
allocating its pixels."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.images import write_image_folder

from edgecls.data.calibration import folder_calibration
from edgecls.data.check import check_dataset
from edgecls.data.split import prepare_split
from edgecls.errors import ConfigError, DataError
from edgecls.runtime.image_header import (DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, check_pixels,
                                          image_size, parse_max_pixels)
from edgecls.runtime.preprocess import read_image_bgr

BOMB_SIDE = 20000


def write_png_bomb(path: Path, side: int = BOMB_SIDE) -> Path:
    """A valid grayscale PNG of side x side black pixels, compressed to about 0.5 MB."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0, then black pixels
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff"])
def test_header_sizes_match_the_decoder(ext: str) -> None:
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    assert image_size(encoded.tobytes()) == (53, 37)


def test_header_sizes_of_gif_lossless_webp_and_exif_jpeg() -> None:
    assert image_size(b"GIF89a" + struct.pack("<HH", 640, 480) + bytes(20)) == (640, 480)
    ok, lossless = cv2.imencode(".webp", np.zeros((21, 34, 3), np.uint8),
                                [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert ok and image_size(lossless.tobytes()) == (34, 21)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((9, 11, 3), np.uint8))
    app1 = b"\xff\xe1" + struct.pack(">H", 40002) + bytes(40000)  # a large EXIF block first
    assert image_size(jpeg.tobytes()[:2] + app1 + jpeg.tobytes()[2:]) == (11, 9)
    big_endian_tiff = (b"MM\x00*" + struct.pack(">IH", 8, 2) + struct.pack(">HHIHH", 256, 3, 1, 30000, 0)
                       + struct.pack(">HHII", 257, 4, 1, 20000) + bytes(4))
    assert image_size(big_endian_tiff) == (30000, 20000)
    assert image_size(b"not an image at all") is None


def test_the_bomb_is_small_on_disk_and_declares_400_megapixels(bomb: Path) -> None:
    assert bomb.stat().st_size < 2_000_000
    assert image_size(bomb.read_bytes()) == (BOMB_SIDE, BOMB_SIDE)
    with pytest.raises(DataError, match=r"20000x20000 pixels \(400 MP\), over the 64 MP limit"):
        read_image_bgr(bomb)


def test_limit_can_be_raised(bomb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, "400M")
    check_pixels(bomb.read_bytes(), bomb)  # exactly at the limit: allowed
    monkeypatch.setenv(MAX_PIXELS_ENV, "399999999")
    with pytest.raises(DataError):
        check_pixels(bomb.read_bytes(), bomb)
    assert parse_max_pixels("90M") == 90_000_000 and parse_max_pixels("1.5G") == 1_500_000_000
    assert DEFAULT_MAX_PIXELS == 64_000_000
    for bad in ("lots", "0", "-5M"):
        with pytest.raises(ConfigError):
            parse_max_pixels(bad)


def test_check_and_split_exclude_the_bomb(bomb: Path, tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "data", {"cat": 6, "dog": 6})
    (data / "cat" / "huge.png").write_bytes(bomb.read_bytes())
    report = check_dataset(data)
    assert "over the 64 MP limit" in report.unreadable[data / "cat" / "huge.png"]
    split = prepare_split(data, tmp_path / "run")
    assert all("huge" not in str(path) for subset in split.subsets for path, _ in split.items(subset))


def test_calibration_skips_the_bomb(bomb: Path, tmp_path: Path) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    (folder / "huge.png").write_bytes(bomb.read_bytes())
    cv2.imwrite(str(folder / "ok.png"), np.zeros((20, 20, 3), np.uint8))
    assert folder_calibration(folder, (8, 8), count=5).shape == (1, 8, 8, 3)


_PEAK_RSS = r"""
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], check=False, capture_output=True, text=True)
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(result.returncode, round(peak_mb), repr(result.stderr), sep="\n")
"""


def _run_measured(*args: str) -> tuple[int, float, str]:
    """Runs the CLI in a child whose peak RSS alone is measured (not this process's others)."""
    out = subprocess.run([sys.executable, "-c", _PEAK_RSS, sys.executable, "-m", "edgecls", *args],
                         check=False, capture_output=True, text=True, timeout=180).stdout.splitlines()
    return int(out[0]), float(out[1]), eval(out[2])  # noqa: S307 - our own repr() above


def test_run_and_data_check_refuse_the_bomb_without_allocating_it(bomb: Path, tmp_path: Path) -> None:
    from helpers.tiny_models import make_onnx, tiny_metadata

    images = tmp_path / "images"
    images.mkdir()
    (images / "huge.png").write_bytes(bomb.read_bytes())
    model = make_onnx(tmp_path / "m.onnx", metadata=tiny_metadata())
    code, peak_mb, stderr = _run_measured("run", str(model), "--source", str(images), "--headless")
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in stderr, stderr
    assert len(errors) == 1 and "over the 64 MP limit" in errors[0]
    assert peak_mb < 600, f"peak RSS {peak_mb} MB: the image was decoded"

    data = write_image_folder(tmp_path / "data", {"cat": 4, "dog": 4})
    (data / "dog" / "huge.png").write_bytes(bomb.read_bytes())
    report_path = tmp_path / "report.json"
    code, peak_mb, stderr = _run_measured("data", "check", str(data), "--json", str(report_path))
    assert code == 0, stderr
    assert peak_mb < 600, f"peak RSS {peak_mb} MB: the image was decoded"
    reasons = json.loads(report_path.read_text())["unreadable_reasons"]
    assert any("over the 64 MP limit" in why for why in reasons.values())
