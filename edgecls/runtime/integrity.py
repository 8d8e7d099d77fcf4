"""Content digests that let an artifact prove it is intact: no TensorFlow, no backend.

Export writes every artifact with a fixed-length digest field inside its embedded
edgecls metadata, ``edgecls-sha256:`` followed by 64 zeros (the placeholder). Once the
final bytes exist, ``stamp_file`` hashes them (placeholder included) and overwrites the
zeros with the hex SHA-256 in place: same length, so no offset in the file moves.
``verify_file`` zeroes the field again and re-hashes. This works for every format
because TFLite buffers, ONNX ``metadata_props`` and OpenVINO ``rt_info`` all store the
metadata JSON verbatim. An OpenVINO ``.xml`` also carries ``edgecls-bin-sha256:`` with
the SHA-256 of its ``.bin``; it is stamped first, so the ``.xml``'s own digest covers it.

A model without the field (a foreign model, or one exported before digests existed)
loads unverified; a field that is damaged, unstamped or wrong is refused.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from edgecls.atomic import write_bytes_atomic
from edgecls.digest import file_sha256
from edgecls.errors import ModelError

DIGEST_PREFIX = "edgecls-sha256:"
WEIGHTS_PREFIX = "edgecls-bin-sha256:"
DIGEST_PLACEHOLDER = DIGEST_PREFIX + "0" * 64
WEIGHTS_PLACEHOLDER = WEIGHTS_PREFIX + "0" * 64
_HEX_ZEROS = b"0" * 64
_HEX = re.compile(rb"[0-9a-f]{64}")
_NO_VERIFY_HINT = ("copy the file again from the export folder or re-export it; "
                   "--no-verify (verify=False) loads it anyway")

VERIFIED = "verified"
UNSIGNED = "unsigned"


def stamp_bytes(data: bytes, weights: bytes | None = None) -> bytes:
    """``data`` with its digest placeholders filled in (unchanged when it has none).

    Args:
        data: the artifact's final bytes, written with ``DIGEST_PLACEHOLDER`` inside.
        weights: the ``.bin`` beside an OpenVINO ``.xml``, hashed into ``WEIGHTS_PLACEHOLDER``.
    """
    out = bytearray(data)
    if weights is not None:
        _fill(out, _fields(out, WEIGHTS_PREFIX), hashlib.sha256(weights).hexdigest())
    fields = _fields(out, DIGEST_PREFIX)
    _fill(out, fields, _content_digest(out, fields))
    return bytes(out)


def stamp_file(path: str | Path) -> None:
    """Stamps an artifact file in place (atomically); a file without placeholders is left alone."""
    path = Path(path)
    data = path.read_bytes()
    if DIGEST_PLACEHOLDER.encode() not in data and WEIGHTS_PLACEHOLDER.encode() not in data:
        return
    bin_path = path.with_suffix(".bin")
    weights = bin_path.read_bytes() if path.suffix == ".xml" and bin_path.is_file() else None
    write_bytes_atomic(path, stamp_bytes(data, weights))


def verify_file(path: str | Path, content: bytes | None = None) -> str:
    """Checks an artifact against its embedded digest(s).

    Args:
        path: the model file (for an OpenVINO ``.xml``, its ``.bin`` is checked too).
        content: the file's bytes when the caller already read them.

    Returns:
        ``VERIFIED``, or ``UNSIGNED`` when the file carries no digest at all.

    Raises:
        ModelError: the digest is damaged, was never stamped, or does not match.
    """
    path = Path(path)
    data = path.read_bytes() if content is None else content
    fields = _fields(data, DIGEST_PREFIX)
    if not fields:
        return UNSIGNED
    expected = _single_value(path, data, fields, "digest")
    if expected == _HEX_ZEROS:
        raise _corrupted(path, "its digest was never stamped (the export was interrupted)")
    if _content_digest(data, fields).encode() != expected:
        raise _corrupted(path, "its content does not match the SHA-256 digest embedded at export")
    if path.suffix == ".xml":
        _verify_weights(path, data)
    return VERIFIED


def _verify_weights(xml_path: Path, xml: bytes) -> None:
    fields = _fields(xml, WEIGHTS_PREFIX)
    if not fields:
        return
    expected = _single_value(xml_path, xml, fields, "weights digest")
    bin_path = xml_path.with_suffix(".bin")
    if not bin_path.is_file():
        return  # the backend reports the missing .bin with its own message
    actual = file_sha256(bin_path)
    if actual.encode() != expected:
        raise _corrupted(bin_path, f"it does not match the SHA-256 digest stored in {xml_path.name}")


def _fields(data: bytes | bytearray, prefix: str) -> list[int]:
    """Offsets of the 64 hex digits after every ``prefix`` (a plain search: fast on megabytes)."""
    marker, offsets = prefix.encode(), []
    at = data.find(marker)
    while at >= 0:
        offsets.append(at + len(marker))
        at = data.find(marker, at + 1)
    return offsets


def _content_digest(data: bytes | bytearray, fields: list[int]) -> str:
    """SHA-256 of ``data`` with the hex of every digest field read as zeros (no copy)."""
    digest, view, position = hashlib.sha256(), memoryview(data), 0
    for start in fields:
        digest.update(view[position:start])
        digest.update(_HEX_ZEROS)
        position = start + 64
    digest.update(view[position:])
    return digest.hexdigest()


def _fill(data: bytearray, fields: list[int], hex_digest: str) -> None:
    for start in fields:
        data[start:start + 64] = hex_digest.encode()


def _single_value(path: Path, data: bytes, fields: list[int], what: str) -> bytes:
    values = {bytes(data[start:start + 64]) for start in fields}
    if len(values) != 1:
        raise _corrupted(path, f"its embedded {what}s disagree")
    value = values.pop()
    if not _HEX.fullmatch(value):
        raise _corrupted(path, f"its embedded {what} is damaged")
    return value


def _corrupted(path: Path, why: str) -> ModelError:
    return ModelError(f"{path} is corrupted: {why}", _NO_VERIFY_HINT)
