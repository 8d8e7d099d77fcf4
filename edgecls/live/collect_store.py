"""The folder ``edgecls run --collect DIR`` keeps frames in: items, caps, storage budget.

An item is ``<UTC time>-f<frame>.jpg`` plus its JSON sidecar of the same stem; the
sidecar is written last, so an item exists once its sidecar does. Both go through a
temporary name, ``fsync`` and a rename: after a power cut a frame is whole or absent.
A run that starts (again, e.g. restarted by systemd) on the same folder removes the
leftovers of an interrupted write, then counts what is there: the rate caps and the
storage budget continue from the folder, not from zero. Only files named like items are
counted, evicted or removed; anything else in the folder is left alone.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
import shutil
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from edgecls.errors import ConfigError

log = logging.getLogger(__name__)

WHEN_FULL = ("stop", "evict-oldest")
MIN_FREE_BYTES = 64_000_000  # never write when the disk would keep less than this free
_ITEM = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-f\d+\.(jpg|json)$")
_LEFTOVER = re.compile(r"^\.\d{8}T\d{6}\.\d{6}Z-f\d+\.(jpg|json)\.\w+\.tmp$")
_WINDOWS = (("minute", 60.0), ("hour", 3600.0), ("day", 86400.0))
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


@dataclass
class StoreLimits:
    """How much a device may keep: rates over the last minute/hour/day and a size budget.

    ``None`` means no limit. ``when_full``: ``stop`` keeps nothing more once the budget is
    reached; ``evict-oldest`` removes the oldest items to make room.
    """

    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    max_bytes: int | None = None
    when_full: str = "stop"
    min_free_bytes: int = MIN_FREE_BYTES

    def __post_init__(self) -> None:
        if self.when_full not in WHEN_FULL:
            raise ConfigError(f"--collect-when-full {self.when_full!r} is not one of {', '.join(WHEN_FULL)}",
                              "stop keeps what is there; evict-oldest makes room by removing the oldest frames")
        for name in ("per_minute", "per_hour", "per_day", "max_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--collect-max-{name.replace('_', '-').removeprefix('per-')} must be at "
                                  f"least 1, got {value}", "leave the option out for no limit")


def item_stem(unix_time: float, frame_index: int) -> str:
    """The file stem of an item: sortable UTC time, then the frame number."""
    stamp = datetime.fromtimestamp(unix_time, timezone.utc).strftime(_TIME_FORMAT)
    return f"{stamp}-f{frame_index:07d}"


def stem_time(stem: str) -> float:
    """The Unix time an item's stem names."""
    return datetime.strptime(stem.split("-f")[0], _TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp()


def write_durable(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary name beside ``path``, flushes it to the disk, renames it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class CollectStore:
    """The collection folder: what is in it, what the limits still allow, and writing items.

    Rate checks (``capped``, ``count``) run on the loop's thread, ``save`` on the writer's.

    Raises:
        ConfigError: the folder is a file, or cannot be created or written to.
    """

    def __init__(self, folder: str | Path, limits: StoreLimits | None = None) -> None:
        self.folder = Path(folder)
        self.limits = limits or StoreLimits()
        _prepare_folder(self.folder)
        self._lock = threading.Lock()
        self._items: deque[tuple[str, int]] = deque()  # (stem, bytes), oldest first
        self.used_bytes = 0
        self.evicted = 0
        self.full = False  # nothing more will be written in this run
        self._times: list[float] = []  # kept times within the last day, sorted
        self._scan()

    # -- the folder as found ------------------------------------------------------
    def _scan(self) -> None:
        names = sorted(p.name for p in self.folder.iterdir())
        stems = {n.rsplit(".", 1)[0] for n in names if _ITEM.match(n) and n.endswith(".json")}
        for name in names:
            if _LEFTOVER.match(name) or (_ITEM.match(name) and name.rsplit(".", 1)[0] not in stems):
                (self.folder / name).unlink(missing_ok=True)  # an interrupted write: never whole
        for stem in sorted(stems):
            size = sum(_size(self.folder / f"{stem}.{ext}") for ext in ("jpg", "json"))
            self._items.append((stem, size))
            self.used_bytes += size
        self._times = [stem_time(stem) for stem, _ in self._items]
        if self.limits.max_bytes is not None and self.limits.when_full == "stop" \
                and self.used_bytes >= self.limits.max_bytes:
            self._stop(f"{self.folder} already holds {self.used_bytes / 1e6:.1f} MB of frames, at or over "
                       f"--collect-max-mb {self.limits.max_bytes / 1e6:g}: no frames will be kept "
                       "(empty the folder, raise the budget or use --collect-when-full evict-oldest)")

    @property
    def count(self) -> int:
        return len(self._items)

    def recent_hashes(self, how_many: int) -> list[int]:
        """The perceptual hashes of the newest ``how_many`` items, from their sidecars."""
        hashes = []
        for stem, _ in list(self._items)[-how_many:]:
            try:
                hashes.append(int(json.loads((self.folder / f"{stem}.json").read_text())["dhash"], 16))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a sidecar edited by hand: it simply does not count as a duplicate
        return hashes

    # -- rate caps (loop thread) ----------------------------------------------------
    def capped(self, now: float) -> str | None:
        """The first rate cap that keeping a frame at ``now`` would break (e.g. 'minute'), or None."""
        for name, seconds in _WINDOWS:
            cap = getattr(self.limits, f"per_{name}")
            if cap is not None and self._kept_since(now - seconds) >= cap:
                return name
        return None

    def count_kept(self, now: float) -> None:
        """Counts a frame kept at ``now`` against the rate caps (before it is written)."""
        self._times.append(now)
        if len(self._times) > 4096 and self._times[0] < now - 86400.0:
            del self._times[:bisect.bisect_left(self._times, now - 86400.0)]

    def _kept_since(self, start: float) -> int:
        return len(self._times) - bisect.bisect_left(self._times, start)

    # -- writing (writer thread) ------------------------------------------------------
    def save(self, stem: str, jpeg: bytes, sidecar: bytes) -> bool:
        """Writes one item, making room first; False when it was not kept (the store is full).

        Raises:
            OSError: the disk refused the write (full, read-only, removed); nothing partial stays.
        """
        size = len(jpeg) + len(sidecar)
        if self.full or not self._make_room(size):
            return False
        image = self.folder / f"{stem}.jpg"
        write_durable(image, jpeg)
        try:
            write_durable(self.folder / f"{stem}.json", sidecar)
        except OSError:
            image.unlink(missing_ok=True)
            raise
        with self._lock:
            self._items.append((stem, size))
            self.used_bytes += size
        return True

    def _make_room(self, size: int) -> bool:
        budget = self.limits.max_bytes
        while True:
            over_budget = budget is not None and self.used_bytes + size > budget
            free = shutil.disk_usage(self.folder).free
            low_disk = free - size < self.limits.min_free_bytes
            if not (over_budget or low_disk):
                return True
            if self.limits.when_full != "evict-oldest" or not self._items:
                self._stop(self._full_message(over_budget, free))
                return False
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        with self._lock:
            stem, size = self._items.popleft()
            self.used_bytes -= size
        (self.folder / f"{stem}.json").unlink(missing_ok=True)  # the sidecar first: no item without image
        (self.folder / f"{stem}.jpg").unlink(missing_ok=True)
        if not self.evicted:
            log.warning("collect: %s is full: removing the oldest frames to make room for new ones", self.folder)
        self.evicted += 1

    def _full_message(self, over_budget: bool, free: int) -> str:
        if over_budget:
            return (f"collect: {self.folder} reached --collect-max-mb {self.limits.max_bytes / 1e6:g} "
                    f"({self.count} frames): no more frames are kept in this run (the run goes on; "
                    "--collect-when-full evict-oldest would make room instead)")
        return (f"collect: the disk holding {self.folder} is nearly full ({free / 1e6:.1f} MB free; collecting "
                f"leaves at least {self.limits.min_free_bytes / 1e6:g} MB): no more frames are kept in this run "
                "(the run goes on)")

    def _stop(self, message: str) -> None:
        if not self.full:
            log.warning("%s", message)
        self.full = True

    def fail(self, exc: OSError) -> None:
        """A write failed (full or removed disk): says so once and keeps nothing more."""
        reason = exc.strerror or str(exc)
        self._stop(f"collect: cannot write to {self.folder} ({reason}): no more frames are kept in this "
                   "run (the run goes on; frames kept before are intact)")


def _prepare_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--collect {folder} is a file", "give a folder (it is created if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to --collect folder {folder} ({exc.strerror or exc})",
                          "pick a folder this user may write to") from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
