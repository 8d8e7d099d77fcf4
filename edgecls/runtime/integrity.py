"""Content digests that let an artifact prove it is intact: no TensorFlow, no backend.

Export writes every artifact with a fixed-length digest field inside its embedded
edgecls metadata, ``edgecls-blake3:`` followed by 64 zeros (the placeholder). Once the
final bytes exist, ``stamp_file`` hashes them (placeholder included) and overwrites the
zeros with the hex digest in place: same length, so no offset in the file moves.
``verify_file`` zeroes the field again and re-hashes. This works for every format
because TFLite buffers, ONNX ``metadata_props`` and OpenVINO ``rt_info`` all store the
metadata JSON verbatim. An OpenVINO ``.xml`` also carries ``edgecls-bin-sha256:`` with
the SHA-256 of its ``.bin``; it is stamped first, so the ``.xml``'s own digest covers it.

The field's prefix names the hash (``SCHEMES``): exports write BLAKE3 (about twice as
fast as SHA-256 even with SHA instructions, and many times faster on CPUs without them,
such as the Raspberry Pi 4's); artifacts exported with ``edgecls-sha256:`` fields, before
BLAKE3, verify as they always did. A model without a field (a foreign model, or one
exported before digests existed) loads unverified; a field that is damaged, unstamped or
wrong is refused.

At load (``load_backend``), ``read_model`` reads a model's file(s) once; ``start_check``
hashes those bytes in a thread (hashlib and blake3 release the GIL on large buffers, so
the digest is computed on another core) while the backend loads the same bytes; the
backend is handed out only after the check passed. So the file is read once, the check
adds little to the load time when a core is free, and what runs is exactly what was
verified (no window for the file to change between check and load). The check looks for
the digest fields near the ends of the file, where exporters write them: a search of
the whole file holds the GIL and so stalls the load beside it (see ``digest_fields_near_ends``).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.atomic import write_bytes_atomic
from edgecls.errors import ModelError
from edgecls.formats import digested_file

try:
    import blake3
except ImportError:  # a runtime installed without its dependencies: BLAKE3 digests say so
    blake3 = None


@dataclass(frozen=True)
class DigestScheme:
    """A hash an artifact's digest field can name.

    Attributes:
        prefix: what precedes the field's 64 hex digits, e.g. ``edgecls-blake3:``.
        name: the hash, as errors name it.
        new: a fresh hasher (``update``, ``hexdigest``), or None when its package is missing.
    """

    prefix: str
    name: str
    new: Callable[[], Any] | None


BLAKE3 = DigestScheme("edgecls-blake3:", "BLAKE3", blake3.blake3 if blake3 is not None else None)
SHA256 = DigestScheme("edgecls-sha256:", "SHA-256", hashlib.sha256)  # exports before BLAKE3
SCHEMES = (BLAKE3, SHA256)

DIGEST_PREFIX = BLAKE3.prefix  # what exports write
WEIGHTS_PREFIX = "edgecls-bin-sha256:"
DIGEST_PLACEHOLDER = DIGEST_PREFIX + "0" * 64
WEIGHTS_PLACEHOLDER = WEIGHTS_PREFIX + "0" * 64
_HEX_ZEROS = b"0" * 64
_HEX = re.compile(rb"[0-9a-f]{64}")
_END_WINDOW = 256 * 1024  # where exporters write the digest fields: see digest_fields_near_ends
_NO_VERIFY_HINT = ("copy the file again from the export folder or re-export it; "
                   "--no-verify (verify=False) loads it anyway")

VERIFIED = "verified"
UNSIGNED = "unsigned"
NOT_CHECKED = "not checked (--no-verify)"


@dataclass(frozen=True)
class ModelBytes:
    """A model file's bytes, read once.

    Attributes:
        content: the model file (for OpenVINO, the ``.xml``).
        weights: an OpenVINO ``.xml``'s ``.bin`` (None for other formats or when it is missing).
    """

    content: bytes
    weights: bytes | None = None


def read_model(path: str | Path) -> ModelBytes:
    """Reads a model file (and an OpenVINO ``.xml``'s ``.bin``) into memory, once."""
    path = Path(path)
    return ModelBytes(path.read_bytes(), _digested_side_bytes(path))


def _digested_side_bytes(path: Path) -> bytes | None:
    """The bytes of the side file whose digest the artifact carries (None: none or missing)."""
    side = digested_file(path)
    return side.read_bytes() if side is not None and side.is_file() else None


class PendingCheck:
    """A model's digest being checked in a thread; ``result()`` waits for it."""

    def __init__(self, path: Path, model: ModelBytes, scheme: DigestScheme | None, fields: list[int]) -> None:
        self._status: str | None = UNSIGNED if scheme is None else None
        self._error: ModelError | None = None
        self._thread: threading.Thread | None = None
        if scheme is not None:
            self._thread = threading.Thread(target=self._run, args=(path, model, scheme, fields),
                                            name="edgecls-verify", daemon=True)
            self._thread.start()

    def _run(self, path: Path, model: ModelBytes, scheme: DigestScheme, fields: list[int]) -> None:
        try:
            self._status = _verify_located(path, model, scheme, fields)
        except ModelError as exc:
            self._error = exc

    def result(self) -> str:
        """``VERIFIED`` or ``UNSIGNED``, once the check is done.

        Raises:
            ModelError: the bytes do not match their embedded digest(s).
        """
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._status  # type: ignore[return-value]


def start_check(path: str | Path, model: ModelBytes) -> PendingCheck:
    """Starts checking ``model`` (read from ``path``) against its digest(s) in a thread.

    Digest fields are looked for near the ends only, here (a search that holds the GIL
    wherever it runs). A model without any there is ``UNSIGNED`` at once, without a
    thread, and the caller asks its metadata whether it should carry one (``load_backend``).
    """
    path = Path(path)
    scheme, fields = _located(path, model.content, near_ends=True)
    return PendingCheck(path, model, scheme, fields)


def stamp_bytes(data: bytes, weights: bytes | None = None) -> bytes:
    """``data`` with its digest placeholders filled in (unchanged when it has none).

    Args:
        data: the artifact's final bytes, written with ``DIGEST_PLACEHOLDER`` (or the
            placeholder of another of ``SCHEMES``) inside.
        weights: the ``.bin`` beside an OpenVINO ``.xml``, hashed into ``WEIGHTS_PLACEHOLDER``.
    """
    out = bytearray(data)
    if weights is not None:
        _fill(out, digest_fields(out, WEIGHTS_PREFIX), hashlib.sha256(weights).hexdigest())
    for scheme in SCHEMES:
        fields = digest_fields(out, scheme.prefix)
        if fields:
            _fill(out, fields, _content_digest(_hasher(scheme, "<artifact>"), out, fields))
    return bytes(out)


def stamp_file(path: str | Path) -> None:
    """Stamps an artifact file in place (atomically); a file without placeholders is left alone."""
    path = Path(path)
    data = path.read_bytes()
    placeholders = [WEIGHTS_PLACEHOLDER] + [scheme.prefix + "0" * 64 for scheme in SCHEMES]
    if not any(placeholder.encode() in data for placeholder in placeholders):
        return
    write_bytes_atomic(path, stamp_bytes(data, _digested_side_bytes(path)))


def verify_file(path: str | Path) -> str:
    """Checks an artifact file (for an OpenVINO ``.xml``, its ``.bin`` too) against its
    embedded digest(s); see ``verify_bytes``."""
    model = read_model(path)
    return verify_bytes(path, model.content, model.weights)


def verify_bytes(path: str | Path, data: bytes, weights: bytes | None = None, everywhere: bool = True) -> str:
    """Checks an artifact's bytes against the digest(s) embedded in them.

    Args:
        path: the file they were read from (named in errors; its suffix tells an OpenVINO ``.xml``).
        data: the file's bytes.
        weights: an OpenVINO ``.xml``'s ``.bin`` bytes (None: missing, left to the backend).
        everywhere: when no digest field lies near the ends of ``data`` (where exporters
            write them), search all of it, a pass that holds the GIL; ``False`` returns
            ``UNSIGNED`` then.

    Returns:
        ``VERIFIED``, or ``UNSIGNED`` when the file carries no digest at all.

    Raises:
        ModelError: the digest is damaged, was never stamped, does not match, or names
            a hash whose package is not installed.
    """
    path = Path(path)
    scheme, fields = _located(path, data, near_ends=True)
    if scheme is None and everywhere:
        scheme, fields = _located(path, data, near_ends=False)
    if scheme is None:
        return UNSIGNED
    return _verify_located(path, ModelBytes(data, weights), scheme, fields)


def _verify_located(path: Path, model: ModelBytes, scheme: DigestScheme, fields: list[int]) -> str:
    """``verify_bytes`` once the digest fields were found (``VERIFIED`` or raises)."""
    data = model.content
    expected = _single_value(path, data, fields, "digest")
    if expected == _HEX_ZEROS:
        raise _corrupted(path, "its digest was never stamped (the export was interrupted)")
    matches = _content_digest(_hasher(scheme, path), data, fields).encode() == expected
    if not matches and not _matches_with_every_field(path, scheme, data, fields, expected):
        raise _corrupted(path, f"its content does not match the {scheme.name} digest embedded at export")
    if (side := digested_file(path)) is not None:
        _verify_weights(path, side, data, model.weights)
    return VERIFIED


def _verify_weights(xml_path: Path, bin_path: Path, xml: bytes, weights: bytes | None) -> None:
    fields = digest_fields(xml, WEIGHTS_PREFIX)
    if not fields:
        return
    expected = _single_value(xml_path, xml, fields, "weights digest")
    if weights is None:
        return  # the backend reports the missing .bin with its own message
    if hashlib.sha256(weights).hexdigest().encode() != expected:
        raise _corrupted(bin_path,
                         f"it does not match the SHA-256 digest stored in {xml_path.name}")


def _hasher(scheme: DigestScheme, path: Path | str) -> Any:
    if scheme.new is None:
        raise ModelError(f"{path} carries a {scheme.name} digest, but the {scheme.name.lower()} "
                         "package that checks it is not installed",
                         f"pip install {scheme.name.lower()} (an edgecls dependency); "
                         "--no-verify (verify=False) loads the model unchecked")
    return scheme.new()


def _located(path: Path, data: bytes, near_ends: bool) -> tuple[DigestScheme | None, list[int]]:
    """The scheme and field offsets of the digest in ``data`` (None, [] when it has none).

    Near the ends, the first scheme found is taken (newest first): fields of another kind
    elsewhere make its digest mismatch, and the search of all of ``data`` refuses them.
    """
    if near_ends:
        found = next(((scheme, fields) for scheme in SCHEMES
                      if (fields := digest_fields_near_ends(data, scheme.prefix))), None)
        return found or (None, [])
    found_all = [(scheme, fields) for scheme in SCHEMES if (fields := digest_fields(data, scheme.prefix))]
    if len(found_all) > 1:
        raise _corrupted(path, "it carries digests of different kinds")
    return found_all[0] if found_all else (None, [])


def _matches_with_every_field(path: Path, scheme: DigestScheme, data: bytes, near_ends: list[int],
                              expected: bytes) -> bool:
    """Whether ``data`` matches ``expected`` with the fields anywhere in it zeroed: the
    slow path, taken only when the fields near the ends were not all of them (or the
    content is damaged)."""
    every_scheme, every = _located(path, data, near_ends=False)
    if every_scheme is not scheme or every == near_ends:
        return False
    return (_single_value(path, data, every, "digest") == expected
            and _content_digest(_hasher(scheme, path), data, every).encode() == expected)


def digest_fields_near_ends(data: bytes | bytearray, prefix: str) -> list[int]:
    """The first field within ``_END_WINDOW`` bytes of the start of a large ``data`` and
    the last one within ``_END_WINDOW`` bytes of its end (all fields of a small one).

    Exporters write one at most at each end (TFLite: in the metadata buffer near the
    start; ONNX: in ``doc_string`` at the start and ``metadata_props`` at the end), and
    each search stops at its hit; searching only there spares a pass over the weights
    that holds the GIL (1.1 ms for 4 MB here). A field elsewhere makes the digest
    mismatch, and ``verify_bytes`` then looks again in all of ``data``: this only makes
    the common case fast, it never accepts more.
    """
    if len(data) <= 2 * _END_WINDOW:
        return digest_fields(data, prefix)
    marker = prefix.encode()
    ends = (data.find(marker, 0, _END_WINDOW), data.rfind(marker, len(data) - _END_WINDOW))
    return [at + len(marker) for at in ends if at >= 0]


def digest_fields(data: bytes | bytearray, prefix: str, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets of the 64 hex digits after every ``prefix`` whose marker lies in
    ``data[start:end]`` (a plain search)."""
    marker, offsets = prefix.encode(), []
    end = len(data) if end is None else end
    at = data.find(marker, start, end)
    while at >= 0:
        offsets.append(at + len(marker))
        at = data.find(marker, at + 1, end)
    return offsets


def _content_digest(hasher: Any, data: bytes | bytearray, fields: list[int]) -> str:
    """The digest of ``data`` with the hex of every digest field read as zeros (no copy)."""
    view, position = memoryview(data), 0
    for start in fields:
        hasher.update(view[position:start])
        hasher.update(_HEX_ZEROS)
        position = start + 64
    hasher.update(view[position:])
    return hasher.hexdigest()


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
