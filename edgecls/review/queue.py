"""The frames of an inbox, in the order labelling them should help most.

A frame is an image file of the inbox (``edgecls collect`` writes ``<hash>.jpg`` with a
``<hash>.json`` sidecar; images put there by hand work too, without a suggestion). Files
that are not images, and JPEG/PNG files cut short (no end marker), are listed as refused
and never moved. The order is uncertainty first: the smallest margin between the model's
top-1 and top-2 scores, then the lowest top-1 score; frames without scores come last.
Only file names, sizes and sidecars are read (no decoding): a few thousand frames load in
well under a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.formats import is_image

_TAIL = 64  # bytes searched for the end marker (some writers pad after it)


@dataclass
class Frame:
    """One frame waiting for a label; ``info`` is what the page shows (device text: untrusted)."""

    name: str
    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def priority(self) -> tuple[float, float, str]:
        topk = self.info.get("topk") or []
        if not topk:
            return (2.0, 2.0, self.name)
        top1 = float(topk[0][1])
        top2 = float(topk[1][1]) if len(topk) > 1 else 0.0
        return (top1 - top2, top1, self.name)


@dataclass
class InboxContents:
    """The frames of an inbox, best first, and the files refused (name -> reason)."""

    frames: list[Frame]
    refused: dict[str, str]


def read_inbox(folder: Path) -> InboxContents:
    """Lists ``folder``'s frames in labelling order."""
    frames, refused = [], {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() == ".json":
            continue
        reason = _refusal(path)
        if reason:
            refused[path.name] = reason
            continue
        frames.append(Frame(path.name, path, _frame_info(path)))
    frames.sort(key=lambda frame: frame.priority)
    return InboxContents(frames, refused)


def _refusal(path: Path) -> str | None:
    if not is_image(path):
        return "not an image"
    size = path.stat().st_size
    if size == 0:
        return "empty"
    with path.open("rb") as handle:
        head = handle.read(8)
        handle.seek(max(0, size - _TAIL))
        tail = handle.read()
    if head[:2] == b"\xff\xd8" and b"\xff\xd9" not in tail:
        return "cut short (no JPEG end marker)"
    if head == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
        return "cut short (no PNG end chunk)"
    return None


def _frame_info(path: Path) -> dict[str, Any]:
    """The sidecar fields the page shows, checked for shape (a malformed sidecar shows nothing)."""
    try:
        sidecar = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(sidecar, dict):
        return {}
    info: dict[str, Any] = {"topk": _topk(sidecar.get("topk"))}
    for key in ("time", "source", "why"):
        if isinstance(sidecar.get(key), (str, int, float)):
            info[key] = str(sidecar[key])[:300]
    collected = sidecar.get("collected")
    if isinstance(collected, dict) and isinstance(collected.get("host"), str):
        info["host"] = collected["host"][:200]
    model = sidecar.get("model")
    if isinstance(model, dict) and isinstance(model.get("file"), str):
        info["model"] = {"file": model["file"][:200], "sha256": str(model.get("sha256", ""))[:64]}
    return info


def _topk(value: Any) -> list[list[Any]]:
    topk = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) \
                and isinstance(entry[1], (int, float)):
            topk.append([entry[0][:100], float(entry[1])])
    return sorted(topk, key=lambda pair: -pair[1])[:5]
