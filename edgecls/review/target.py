"""The dataset labels go into: its class folders, new class names, and moves that never overwrite.

A flat dataset (``DATASET/<class>/``) gets labelled frames in ``DATASET/<class>/``; a
pre-split one (``train/ val/ test/``) in its train folder, so the held-out splits stay
untouched. Files are named by content (``<first 16 hex digits of SHA-256><suffix>``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgecls.data.scan import SUBSET_FOLDERS, scan_dataset
from edgecls.errors import ConfigError, DataError

HASH_CHARS = 16
_CLASS_NAME = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,100}$")


@dataclass
class DatasetTarget:
    """Where labelled frames go.

    Attributes:
        root: the dataset folder.
        class_root: the folder holding one folder per class (``root`` or its train folder).
        classes: class names, sorted.
    """

    root: Path
    class_root: Path
    classes: list[str]

    @classmethod
    def open(cls, root: str | Path) -> DatasetTarget:
        """Reads a dataset's layout and classes.

        Raises:
            DataError: the folder is missing or is not a folder-per-class dataset.
        """
        scan = scan_dataset(root)
        class_root = scan.root
        if scan.layout == "presplit":
            class_root = next(d for d in scan.root.iterdir()
                              if d.is_dir() and SUBSET_FOLDERS.get(d.name.lower()) == "train")
        return cls(scan.root.resolve(), class_root.resolve(), scan.labels)

    def class_folder(self, name: str, create: bool = False) -> Path:
        """The folder of class ``name``; ``create`` makes a new class (its name checked first).

        Raises:
            ConfigError: an unknown class without ``create``, or a name that cannot be a folder.
        """
        if name in self.classes:
            return self.class_root / name
        if not create:
            raise ConfigError(f"the dataset has no class {name!r}", "use 'new class' to add one")
        check_class_name(name)
        (self.class_root / name).mkdir(exist_ok=True)
        self.classes = sorted({*self.classes, name})
        return self.class_root / name

    def holder_of(self, file_name: str) -> str | None:
        """The class whose folder already has ``file_name``, or None."""
        return next((c for c in self.classes if (self.class_root / c / file_name).exists()), None)


def check_class_name(name: str) -> None:
    """Refuses names that are not one plain folder name.

    Raises:
        ConfigError: empty, a slash or backslash, control characters, '.'/'..', a leading dot
            or space, or a train/val/test folder name.
    """
    stripped = name.strip()
    if not _CLASS_NAME.match(name) or stripped != name or name.startswith(".") or not stripped:
        raise ConfigError(f"class name {name!r} cannot be a folder name",
                          "use letters, digits, '-' or '_' (no slash, no leading dot or space)")
    if name.lower() in SUBSET_FOLDERS:
        raise ConfigError(f"class name {name!r} would be read as a dataset split", "pick another name")


def content_file_name(data: bytes, suffix: str) -> str:
    """``<first 16 hex digits of SHA-256><suffix>``."""
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS] + suffix.lower()


def move_exclusive(source: Path, destination: Path) -> None:
    """Moves a file without ever replacing one (a hard link, else a copy, then the source removed).

    Raises:
        FileExistsError: ``destination`` exists; nothing moved.
        DataError: the source is gone.
    """
    try:
        os.link(source, destination)
    except FileNotFoundError:
        raise DataError(f"{source} is gone", "was it moved by another program?") from None
    except OSError as exc:
        if isinstance(exc, FileExistsError) or exc.errno not in (18, 1, 95):  # EXDEV, EPERM, EOPNOTSUPP
            raise
        _copy_exclusive(source, destination)
    source.unlink()


def _copy_exclusive(source: Path, destination: Path) -> None:
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.link(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
