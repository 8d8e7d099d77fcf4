"""Atomic writes: a crash or a full disk never leaves a half-written artifact behind.

Everything edgecls writes goes to a temporary name beside its destination and is
renamed into place only once complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Writes UTF-8 ``text`` to ``path`` through a temporary file and a rename."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it onto ``path`` on success.

    Works for files and directories (e.g. a SavedModel). On any exception the
    temporary file or directory is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def save_keras_model_atomic(model: Any, path: str | Path) -> None:
    """``model.save`` to a temporary ``.keras`` name beside ``path``, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial.keras", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # Keras creates it anew, with the user's umask (mkstemp's file is owner-only)
    try:
        model.save(str(tmp))  # Keras insists on the .keras suffix
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
