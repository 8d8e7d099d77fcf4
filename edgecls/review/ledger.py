"""The ledger: one JSON line per decision, so every file added to a dataset can be traced and undone.

It lives in the dataset (``DATASET/.edgecls-labels.jsonl``; a dot file, so training does not
read it as data). A ``label`` line names the frame, the inbox it came from, the file it
became, the label, the model's suggestion, who and when; ``none`` is a frame that shows no
class (moved to the inbox's ``.none/``); ``undo`` names the line it reverses. Lines are
appended and flushed to the disk one by one; nothing in it is ever rewritten.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LEDGER_NAME = ".edgecls-labels.jsonl"


class Ledger:
    """Appends decisions to a dataset's ledger."""

    def __init__(self, dataset_root: Path, who: str) -> None:
        self.path = dataset_root / LEDGER_NAME
        self.who = who
        self._lock = threading.Lock()

    def append(self, action: str, **fields: Any) -> dict[str, Any]:
        """Writes one line (with an id, who and when) and returns it."""
        entry = {"id": uuid.uuid4().hex[:12], "action": action, "who": self.who,
                 "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields}
        line = (json.dumps(entry) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry


def read_ledger(dataset_root: Path) -> list[dict[str, Any]]:
    """Every line of a dataset's ledger (an unreadable line, e.g. cut by a crash, is left out)."""
    path = dataset_root / LEDGER_NAME
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries
