"""``edgecls collect --host``: pull the frames ``run --collect`` kept on devices into an inbox.

Per host, in parallel (``parallel.py``): list the folder's complete items with their
SHA-256 (``sha256sum`` there; an item is complete once its sidecar exists, see
``live/collect_store.py``), stream them back as one tar over the ssh channel, and import
every item whose JPEG and sidecar both arrived with the listed hash (``inbox.py``:
deduplicated by content). Only those are then removed from the device, sidecar first; a
frame cut off mid-transfer is neither imported nor removed, and comes with the next pull.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from edgecls.remote.host import HostSpec
from edgecls.remote.inbox import Inbox
from edgecls.remote.parallel import HostOutcome, run_on_hosts
from edgecls.remote.ssh import RemoteError, SshOptions, SshTransport, last_line, shell_path

DEFAULT_DEVICE_DIR = "collect"
_ITEM = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z-f\d+)\.(jpg|json)$")  # as live/collect_store.py names them
_BATCH = 400  # items per remove command (keeps the command line short)
Say = Callable[[HostSpec, str], None]


@dataclass
class CollectJob:
    """Where to pull from and to, and whether the device keeps its copies."""

    hosts: list[HostSpec]
    inbox: Inbox
    device_dir: str = DEFAULT_DEVICE_DIR
    keep_on_device: bool = False
    timeout_s: float = 1800.0
    ssh: SshOptions = field(default_factory=SshOptions)


@dataclass
class HostPull:
    """What one host's pull did."""

    listed: int = 0  # complete items on the device
    new: int = 0  # imported into the inbox
    duplicates: int = 0  # arrived intact, the inbox had them already
    incomplete: int = 0  # did not arrive intact: left on the device
    removed: int = 0  # removed from the device

    def describe(self, keep_on_device: bool) -> str:
        text = f"{self.new} new frame{'s' * (self.new != 1)}"
        if self.duplicates:
            text += f", {self.duplicates} already in the inbox"
        if self.incomplete:
            text += f", {self.incomplete} did not arrive intact (left on the device for the next pull)"
        if self.listed and not keep_on_device:
            text += f"; removed {self.removed} from the device"
        return text if self.listed else "no frames on the device"


def collect_from_hosts(job: CollectJob, say: Say | None = None) -> list[HostOutcome]:
    """Pulls from every host in parallel; each outcome's value is its ``HostPull``."""
    say = say or (lambda host, message: None)
    return run_on_hosts(job.hosts, lambda host: pull_host(job, host, say), job.timeout_s)


def pull_host(job: CollectJob, host: HostSpec, say: Say) -> HostPull:
    """Lists, transfers, imports and (unless kept) removes one host's frames."""
    transport = SshTransport(host, job.ssh)
    try:
        say(host, "listing frames")
        expected = list_items(transport, job.device_dir)
        pull = HostPull(listed=len(expected))
        if not expected:
            return pull
        say(host, f"pulling {len(expected)} frames")
        intact = transfer(transport, job, expected, pull)
        pull.incomplete = len(expected) - len(intact)
        if intact and not job.keep_on_device:
            job.inbox.flush()  # on the disk here before it is removed there
            say(host, f"removing {len(intact)} frames from the device")
            pull.removed = remove_items(transport, job.device_dir, intact)
        return pull
    finally:
        transport.close()


def list_items(transport: SshTransport, device_dir: str) -> dict[str, dict[str, str]]:
    """{stem: {"jpg": sha256, "json": sha256}} of the device folder's complete items."""
    folder = shell_path(device_dir)
    proc = transport.run(f"cd {folder} 2>/dev/null || exit 3; command -v sha256sum >/dev/null || exit 4; "
                         "find . -maxdepth 1 -type f \\( -name '*.jpg' -o -name '*.json' \\) -exec sha256sum {} + "
                         "2>/dev/null; exit 0", 600.0, check=False)  # find: no argument-list limit
    if proc.returncode == 3:
        raise RemoteError(f"{transport.host.text}: no folder {device_dir} on the device",
                          "pass the folder given to `edgecls run --collect` there with --from")
    if proc.returncode == 4:
        raise RemoteError(f"{transport.host.text}: the device has no sha256sum (coreutils)",
                          "install coreutils there; frames are checked by hash before they are removed")
    items: dict[str, dict[str, str]] = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        match = _ITEM.match(name.removeprefix("./"))
        if match and len(digest) == 64:
            items.setdefault(match[1], {})[match[2]] = digest
    return {stem: hashes for stem, hashes in items.items() if len(hashes) == 2}


def transfer(transport: SshTransport, job: CollectJob, expected: dict[str, dict[str, str]],
             pull: HostPull) -> list[str]:
    """Streams the items as one tar and imports each intact one; returns the intact stems."""
    names = "".join(f"{stem}.jpg\n{stem}.json\n" for stem in sorted(expected)).encode()
    process = transport.popen(f"cd {shell_path(job.device_dir)} && tar -cf - -T -", stdin_pipe=True)
    threading.Thread(target=_write_and_close, args=(process.stdin, names), daemon=True).start()
    intact: list[str] = []
    try:
        for stem, jpeg, sidecar in _intact_items(process, expected):
            if job.inbox.add(jpeg, sidecar, transport.host.text, f"{job.device_dir}/{stem}.jpg"):
                pull.new += 1
            else:
                pull.duplicates += 1
            intact.append(stem)
    finally:
        stderr = _finish(process)
    if process.returncode == 255 and not intact:
        raise transport.connection_error(stderr.decode(errors="replace"))
    return intact


def _write_and_close(pipe: IO[bytes], data: bytes) -> None:
    """Feeds the names to tar on a thread of its own (tar reads them while it writes)."""
    try:
        pipe.write(data)
        pipe.close()
    except (OSError, ValueError):
        pass  # the session ended early; the transfer reports it


def _finish(process: subprocess.Popen[bytes]) -> bytes:
    """Waits for the session to end (killing it when it does not) and returns its stderr."""
    process.stdin = None  # the feeding thread closes it
    try:
        return process.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1]


def _intact_items(process: subprocess.Popen[bytes], expected: dict[str, dict[str, str]]
                  ) -> Iterator[tuple[str, bytes, bytes]]:
    """(stem, jpeg, sidecar) of each item whose two files arrived with their listed hashes."""
    arrived: dict[str, dict[str, bytes]] = {}
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
            for member in tar:
                match = _ITEM.match(member.name)
                if not match or not member.isfile() or match[1] not in expected:
                    continue
                data = tar.extractfile(member).read()
                stem, ext = match[1], match[2]
                if hashlib.sha256(data).hexdigest() != expected[stem][ext]:
                    continue  # changed or damaged on the way: not imported, not removed
                files = arrived.setdefault(stem, {})
                files[ext] = data
                if len(files) == 2:
                    yield stem, files["jpg"], files["json"]
                    del arrived[stem]
    except (tarfile.TarError, EOFError, OSError):
        return  # the stream was cut: what arrived whole before the cut is kept


def remove_items(transport: SshTransport, device_dir: str, stems: list[str]) -> int:
    """Removes items from the device, each sidecar before its image; returns how many."""
    for start in range(0, len(stems), _BATCH):
        batch = stems[start:start + _BATCH]
        names = " ".join(shlex.quote(f"{stem}.{ext}") for stem in batch for ext in ("json", "jpg"))
        proc = transport.run(f"cd {shell_path(device_dir)} && rm -f {names}", 120.0, check=False)
        if proc.returncode != 0:
            raise RemoteError(f"{transport.host.text}: could not remove pulled frames from the device: "
                              f"{last_line(proc.stderr) or proc.returncode} (they are in the inbox; the next "
                              "pull skips them as duplicates)")
    return len(stems)
