"""Is a JPEG complete? Walks its markers to the end-of-image marker.

OpenCV decodes a truncated JPEG without an error (the missing rows come out gray), so the
dataset check must find truncation itself. The end-of-image marker is not always the last
bytes of a complete file: phone "motion photos" (Samsung, Google) append a video after it,
and some tools append padding or metadata trailers. It is not enough to find it anywhere
either: an EXIF thumbnail holds a complete JPEG of its own, end marker included. So the
walk skips segments by their lengths and entropy-coded data up to the next real marker.
"""

from __future__ import annotations

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and restart markers carry no length


def is_complete_jpeg(data: bytes) -> bool:
    """True when ``data`` (starting with the JPEG start-of-image marker) reaches its
    end-of-image marker; bytes after it are allowed."""
    if data[:2] != b"\xff\xd8":
        return False
    pos = 2
    while True:
        marker, pos = _next_marker(data, pos)
        if marker is None:
            return False
        if marker == _EOI:
            return True
        if marker in _STANDALONE or marker == _SOI:
            continue
        if pos + 2 > len(data):
            return False
        pos += int.from_bytes(data[pos:pos + 2], "big")
        if marker == _SOS:
            pos = _skip_entropy_coded(data, pos)


def _next_marker(data: bytes, pos: int) -> tuple[int | None, int]:
    """The marker at ``pos`` (fill bytes 0xFF skipped) and the position after it."""
    if pos >= len(data) or data[pos] != 0xFF:
        return None, pos
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data):
        return None, pos
    return data[pos], pos + 1


def _skip_entropy_coded(data: bytes, pos: int) -> int:
    """The position of the first marker after entropy-coded data: an 0xFF followed by a
    byte that is neither a stuffed zero nor a restart marker."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        follower = data[pos + 1]
        if follower == 0x00 or 0xD0 <= follower <= 0xD7:
            pos += 2
            continue
        return pos

