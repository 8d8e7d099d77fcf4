"""Content fingerprints of image files: what a run's split is a salted hash of.

Pure Python (hashlib), no TensorFlow and no image decoding: ``edgecls bench`` uses it
on devices to tell a run's held-out files from its training files in any folder,
given the split's salt and fractions embedded in the artifact.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

DIGEST_BYTES = 16
HASH_RULE = "blake2b-64('SALT:' + blake2b-128(file bytes).hex()) / 2**64"


def content_digest(data: bytes) -> str:
    """Hex digest of a file's bytes (byte-identical files share it)."""
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).hexdigest()


def file_digest(path: str | Path) -> str:
    """``content_digest`` of a file on disk."""
    return content_digest(Path(path).read_bytes())


def unit_hash(digest: str, salt: int) -> float:
    """Maps a content digest to [0, 1), salted: the split puts a file in train below the
    train fraction, then val, then test."""
    value = hashlib.blake2b(f"{salt}:{digest}".encode(), digest_size=8).digest()
    return int.from_bytes(value, "big") / 2**64
