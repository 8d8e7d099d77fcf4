"""Copy files to a device only when they changed, replacing each one atomically.

Changed means the SHA-256 differs from the device's copy (``sha256sum`` there; without it
every file counts as changed). New versions are unpacked into a scratch folder beside the
destination and renamed into place, so a service reading a model never sees half a file.
"""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path

from edgecls.digest import file_sha256
from edgecls.remote.ssh import SshTransport, shell_path


def remote_hashes(transport: SshTransport, remote_dir: str, names: list[str], timeout_s: float) -> dict[str, str]:
    """SHA-256 of the named files in ``remote_dir`` that exist there."""
    quoted = " ".join(shlex.quote(name) for name in names)
    proc = transport.run(f"cd {shell_path(remote_dir)} 2>/dev/null && sha256sum -- {quoted} 2>/dev/null",
                         timeout_s, check=False)
    hashes = {}
    for line in proc.stdout.decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 64 and name:
            hashes[name] = digest
    return hashes


def sync_files(transport: SshTransport, files: dict[str, Path], remote_dir: str, timeout_s: float) -> list[str]:
    """Brings ``remote_dir`` up to date with ``files`` (name -> local path); returns the names copied."""
    existing = remote_hashes(transport, remote_dir, list(files), min(timeout_s, 120.0))
    changed = {name: path for name, path in files.items() if existing.get(name) != file_sha256(path)}
    if not changed:
        return []
    scratch = f"{remote_dir.rstrip('/')}/.incoming-{uuid.uuid4().hex[:12]}"
    transport.put(changed, scratch, timeout_s)
    moves = " && ".join(f"mv -f {shell_path(scratch + '/' + name)} {shell_path(remote_dir + '/' + name)}"
                        for name in changed)
    transport.run(f"{moves}; rc=$?; rm -rf {shell_path(scratch)}; exit $rc", min(timeout_s, 120.0))
    return sorted(changed)
