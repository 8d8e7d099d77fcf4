"""The inbox on this machine: frames pulled from devices, waiting to be labelled.

An item is ``<content hash>.jpg`` plus its sidecar ``<content hash>.json`` (the device's
sidecar with a ``collected`` record: host, device file, time, SHA-256). The name is the
first 16 hex digits of the JPEG's SHA-256, so the same frame pulled twice, or from two
devices, is one item. ``.collected.jsonl`` lists every frame ever imported: a frame that was
labelled (moved out) and is pulled again is not imported again. Files appear through a
temporary name and a hard link, which fails instead of overwriting.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgecls.errors import ConfigError

LOG_NAME = ".collected.jsonl"
HASH_CHARS = 16


def content_name(data: bytes) -> str:
    """The item stem for a frame's bytes: the first 16 hex digits of their SHA-256."""
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def create_exclusive(path: Path, data: bytes) -> bool:
    """Writes ``data`` to ``path`` through a temporary file; False when ``path`` exists.

    Not flushed to the disk one by one (two fsyncs a frame would cap a pull at a few dozen
    frames a second): ``Inbox.flush`` does it for a whole batch.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


class Inbox:
    """The inbox folder; safe to import into from several threads (one per host).

    Raises:
        ConfigError: the folder is a file or cannot be created or written to.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"--into {self.folder} is a file", "give a folder (it is created if missing)")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / LOG_NAME).touch()
        except OSError as exc:
            raise ConfigError(f"cannot write to the inbox {self.folder} ({exc.strerror or exc})",
                              "pick a folder this user may write to") from None
        self._lock = threading.Lock()
        self._known = self._read_log()

    def _read_log(self) -> set[str]:
        known = set()
        for line in (self.folder / LOG_NAME).read_text(errors="replace").splitlines():
            try:
                known.add(json.loads(line)["name"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash: the files on disk still deduplicate
        return known

    def add(self, jpeg: bytes, sidecar: bytes, host: str, device_file: str) -> bool:
        """Imports one frame; False when the inbox has (or had) the same bytes already."""
        name = content_name(jpeg)
        with self._lock:
            if name in self._known or (self.folder / f"{name}.jpg").exists():
                return False
            record = {"host": host, "device_file": device_file, "sha256": hashlib.sha256(jpeg).hexdigest(),
                      "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            create_exclusive(self.folder / f"{name}.json", _with_record(sidecar, record))
            if not create_exclusive(self.folder / f"{name}.jpg", jpeg):
                return False
            with (self.folder / LOG_NAME).open("a", encoding="utf-8") as log:
                log.write(json.dumps({"name": name, **record}) + "\n")
            self._known.add(name)
        return True


    def flush(self) -> None:
        """Puts everything imported so far on the disk (before the devices remove their copies)."""
        os.sync()
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _with_record(sidecar: bytes, record: dict[str, Any]) -> bytes:
    """The device's sidecar with ``collected`` added (kept as text when it is not a JSON object)."""
    try:
        data = json.loads(sidecar)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {"device_sidecar": sidecar.decode("utf-8", errors="replace")[:4000]}
    data["collected"] = record
    return (json.dumps(data) + "\n").encode("utf-8")
