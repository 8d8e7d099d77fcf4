"""One labelling session on an inbox: label, none of these, skip, and undo, each traced.

A label moves the frame into the dataset's class folder under its content-hash name and
its sidecar into the inbox's ``.labelled/`` (so undo can put both back); "none of these"
moves both into ``.none/``. Nothing is ever overwritten: a frame whose content the dataset
already holds is refused. Skipped frames stay in the inbox. Only one session may work on an
inbox at a time (a lock file, released when the process ends, however it ends).
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.errors import ConfigError, EdgeclsError
from edgecls.review.ledger import Ledger, read_ledger
from edgecls.review.queue import Frame, InboxContents, read_inbox
from edgecls.review.target import DatasetTarget, content_file_name, move_exclusive

LOCK_NAME = ".review.lock"
LABELLED_DIR = ".labelled"
NONE_DIR = ".none"


class ReviewError(EdgeclsError):
    """A decision that cannot be carried out (the page shows the message)."""


@dataclass
class _Done:
    """A decision of this session, for undo."""

    action: str  # "label" | "none" | "skip"
    frame: Frame
    entry: dict[str, Any] | None = None
    moved_to: Path | None = None


class ReviewSession:
    """The decisions on one inbox's frames, into one dataset.

    Raises:
        ConfigError: the inbox is missing, or another review works on it.
        DataError: the dataset is not a folder-per-class dataset.
    """

    def __init__(self, inbox: str | Path, dataset: str | Path, who: str) -> None:
        self.inbox = Path(inbox).resolve()
        if not self.inbox.is_dir():
            raise ConfigError(f"inbox {inbox} is not a folder", "pass the folder `edgecls collect --into` filled")
        self.target = DatasetTarget.open(dataset)
        if self.target.root == self.inbox or self.inbox in self.target.root.parents \
                or self.target.root in self.inbox.parents:
            raise ConfigError("the inbox and the dataset overlap", "keep the inbox outside the dataset")
        self._lock_handle = _lock_inbox(self.inbox)
        self.ledger = Ledger(self.target.root, who)
        contents: InboxContents = read_inbox(self.inbox)
        self.frames = {frame.name: frame for frame in contents.frames}
        self.order = [frame.name for frame in contents.frames]
        self.refused = contents.refused
        self._done: list[_Done] = []
        self._lock = threading.Lock()
        self.counts = {"label": 0, "none": 0, "skip": 0}

    def label(self, name: str, label: str, new_class: bool = False) -> dict[str, Any]:
        """Moves frame ``name`` into class ``label`` (``new_class``: create it); returns the ledger line."""
        with self._lock:
            frame = self._waiting(name)
            folder = self.target.class_folder(label, create=new_class)
            data = frame.path.read_bytes()
            file_name = content_file_name(data, frame.path.suffix)
            holder = self.target.holder_of(file_name)
            if holder is not None:
                raise ReviewError(f"the dataset already has this frame (in {holder}/{file_name})",
                                  "skip it, or label it 'none of these'")
            destination = folder / file_name
            move_exclusive(frame.path, destination)
            self._move_sidecar(frame, LABELLED_DIR)
            entry = self.ledger.append("label", frame=name, inbox=str(self.inbox), label=label,
                                       file=destination.relative_to(self.target.root).as_posix(),
                                       **self._suggestion(frame))
            return self._finish("label", frame, entry, destination)

    def none_of_these(self, name: str) -> dict[str, Any]:
        """Moves frame ``name`` to the inbox's ``.none/`` (it shows no class); returns the ledger line."""
        with self._lock:
            frame = self._waiting(name)
            destination = _sub_folder(self.inbox, NONE_DIR) / name
            move_exclusive(frame.path, destination)
            self._move_sidecar(frame, NONE_DIR)
            entry = self.ledger.append("none", frame=name, inbox=str(self.inbox), **self._suggestion(frame))
            return self._finish("none", frame, entry, destination)

    def skip(self, name: str) -> None:
        """Leaves frame ``name`` in the inbox and puts it last in this session's order."""
        with self._lock:
            frame = self._waiting(name)
            self.order.remove(name)
            self.order.append(name)
            self._done.append(_Done("skip", frame))
            self.counts["skip"] += 1

    def undo(self) -> dict[str, Any]:
        """Reverses this session's last decision; returns the frame as the page shows it, and the action."""
        with self._lock:
            if not self._done:
                raise ReviewError("nothing to undo in this session")
            done = self._done[-1]
            if done.action != "skip":
                self._put_back(done.action, done.moved_to, done.frame.path, done.entry)
                self.frames[done.frame.name] = done.frame
            self._done.pop()
            if done.frame.name in self.order:  # a skipped frame, now last
                self.order.remove(done.frame.name)
            self.order.insert(0, done.frame.name)
            self.counts[done.action] -= 1
            return {"undone": done.action, "frame": page_record(done.frame)}

    def undo_entry(self, entry_id: str) -> dict[str, Any]:
        """Reverses the ledger line ``entry_id`` (of any session): the frame goes back into this inbox.

        Raises:
            ReviewError: no such label / none line, or it was undone already.
        """
        with self._lock:
            ledger = read_ledger(self.target.root)
            entry = next((e for e in ledger if e.get("id") == entry_id and e.get("action") in ("label", "none")),
                         None)
            if entry is None:
                raise ReviewError(f"the ledger has no label or 'none of these' line {entry_id!r}",
                                  f"the ids are in {self.ledger.path}")
            if any(e.get("undoes") == entry_id for e in ledger):
                raise ReviewError(f"ledger line {entry_id} was undone already")
            frame = self.inbox / Path(str(entry["frame"])).name
            if entry["action"] == "label":
                source = self.target.root / str(entry["file"])
                if self.target.root.resolve() not in source.resolve().parents:
                    raise ReviewError(f"ledger line {entry_id} names a file outside the dataset: refused")
            else:
                source = self.inbox / NONE_DIR / frame.name
            self._put_back(entry["action"], source, frame, entry)
            return entry

    def _put_back(self, action: str, moved_to: Path, frame: Path, entry: dict[str, Any]) -> None:
        """Moves a decided frame (and its sidecar) back into the inbox; writes the undo line."""
        try:
            move_exclusive(moved_to, frame)
        except FileExistsError:
            raise ReviewError(f"{frame} exists already: nothing was moved", "move it away first") from None
        kept = self.inbox / (LABELLED_DIR if action == "label" else NONE_DIR) / frame.with_suffix(".json").name
        if kept.exists():
            move_exclusive(kept, frame.with_suffix(".json"))
        self.ledger.append("undo", frame=frame.name, undoes=entry["id"], file=entry.get("file"))

    def close(self) -> None:
        """Releases the inbox for another session."""
        self._lock_handle.close()

    def _waiting(self, name: str) -> Frame:
        frame = self.frames.get(name)
        if frame is None:
            raise ReviewError(f"no frame {name!r} waits in the inbox", "reload the page")
        return frame

    def _move_sidecar(self, frame: Frame, folder: str) -> None:
        sidecar = frame.path.with_suffix(".json")
        if sidecar.exists():
            destination = _sub_folder(self.inbox, folder) / sidecar.name
            destination.unlink(missing_ok=True)  # the copy of an earlier, undone decision
            move_exclusive(sidecar, destination)

    def _suggestion(self, frame: Frame) -> dict[str, Any]:
        topk = frame.info.get("topk") or []
        fields: dict[str, Any] = {"suggested": topk[0][0] if topk else None,
                                  "suggested_score": topk[0][1] if topk else None}
        for key in ("host", "model", "time"):
            if key in frame.info:
                fields[key] = frame.info[key]
        return fields

    def _finish(self, action: str, frame: Frame, entry: dict[str, Any], moved_to: Path) -> dict[str, Any]:
        del self.frames[frame.name]
        self.order.remove(frame.name)
        self._done.append(_Done(action, frame, entry, moved_to))
        self.counts[action] += 1
        return entry


def page_record(frame: Frame) -> dict[str, Any]:
    """What the page gets for one frame."""
    return {"name": frame.name, **frame.info}


def _sub_folder(inbox: Path, name: str) -> Path:
    folder = inbox / name
    folder.mkdir(exist_ok=True)
    return folder


def _lock_inbox(inbox: Path) -> Any:
    handle = open(inbox / LOCK_NAME, "a+")  # noqa: SIM115 -- held for the session's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise ConfigError(f"another edgecls review is labelling {inbox}{f' ({holder})' if holder else ''}",
                          "finish that one first (one review per inbox at a time)") from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
