"""Image dimensions from the file header, and the pixel limit checked before decoding.

A 1 MB PNG can declare 20000x20000 pixels and take gigabytes once decoded, enough to
kill a Raspberry Pi. Every image edgecls decodes (PNG, JPEG, BMP, WebP, GIF, TIFF) in
data check, training, calibration or ``edgecls run`` on a folder first has its width and
height read from the header here, without decoding, and is refused when it holds more
than ``max_pixels()`` pixels.
The limit is ``DEFAULT_MAX_PIXELS`` unless the environment variable
``EDGECLS_MAX_PIXELS`` says otherwise (the CLI's ``--max-pixels`` sets it).
Pure Python: no OpenCV, no numpy.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from edgecls.errors import ConfigError, DataError

MAX_PIXELS_ENV = "EDGECLS_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 64_000_000  # 64 MP: 192 MB decoded as BGR; larger than phone photos
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def max_pixels() -> int:
    """The pixel limit in force: ``EDGECLS_MAX_PIXELS`` when set, else the default."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    return parse_max_pixels(text, MAX_PIXELS_ENV)


def parse_max_pixels(text: str, where: str = "--max-pixels") -> int:
    """A pixel count such as ``90000000``, ``90M`` or ``1.5G``; a ConfigError otherwise."""
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text.strip()[-1:].upper(), 1)
    number = text.strip()[:-1] if scale != 1 else text.strip()
    try:
        value = int(float(number) * scale)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{where} {text!r} is not a positive pixel count",
                          "e.g. 90000000 or 90M (width x height)")
    return value


def set_max_pixels(limit: int | str | None) -> None:
    """Sets the limit for this process and its children (``None`` keeps the current one)."""
    if limit is not None:
        os.environ[MAX_PIXELS_ENV] = str(parse_max_pixels(str(limit)))


def check_pixels(data: bytes | memoryview, source: str | Path) -> None:
    """Raises a DataError when the header of ``data`` declares more pixels than allowed.

    Files whose header cannot be read are let through: the decoder then reports them.
    """
    size = image_size(data)
    if size is None:
        return
    width, height = size
    limit = max_pixels()
    if width * height > limit:
        raise DataError(
            f"{source} is {width}x{height} pixels ({width * height / 1e6:.0f} MP), over the "
            f"{limit / 1e6:g} MP limit: not decoded",
            f"resize it, or raise the limit with --max-pixels or {MAX_PIXELS_ENV}")


def image_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP, WebP, GIF or TIFF header; None when unknown."""
    head = bytes(data[:32])
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return struct.unpack(">II", head[16:24])
        if head.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if head.startswith(b"BM"):
            width, height = struct.unpack("<ii", head[18:26])
            return abs(width), abs(height)
        if head.startswith((b"GIF87a", b"GIF89a")):
            return struct.unpack("<HH", head[6:10])
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_size(bytes(data[:40]))
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(memoryview(data))
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """Walks the marker segments to the first start-of-frame (SOFn) header."""
    view = memoryview(data)
    pos = 2
    while pos + 9 < len(view):
        if view[pos] != 0xFF:
            return None
        marker = view[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers have no length
            pos += 2
            continue
        length = struct.unpack(">H", view[pos + 2:pos + 4])[0]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", view[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def _tiff_size(view: memoryview) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    order = "<" if bytes(view[:2]) == b"II" else ">"
    ifd = struct.unpack(order + "I", view[4:8])[0]
    count = struct.unpack(order + "H", view[ifd:ifd + 2])[0]
    size: dict[int, int] = {}
    for start in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag, kind = struct.unpack(order + "HH", view[start:start + 4])
        if tag in (256, 257):
            short = kind == 3  # SHORT, else LONG
            size[tag] = struct.unpack(order + ("H" if short else "I"),
                                      view[start + 8:start + (10 if short else 12)])[0]
    return (size[256], size[257]) if len(size) == 2 else None


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None
