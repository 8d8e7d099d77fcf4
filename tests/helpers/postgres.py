"""A throwaway PostgreSQL server for tests, started as the ``postgres`` user (initdb
refuses root) from the server binaries of this machine; ``None`` with a reason when it
cannot start."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PostgresServer:
    folder: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/tune"

    def stop(self) -> None:
        _as_postgres([str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> tuple[PostgresServer | None, str]:
    """(server, "") or (None, why it cannot start)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        return None, "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    if shutil.which("runuser") is None or os.geteuid() != 0:
        return None, "starting PostgreSQL as user postgres needs root and runuser"
    try:
        import pwd

        user = pwd.getpwnam("postgres")
    except KeyError:
        return None, "there is no postgres user"
    bin_dir = Path(bins[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="edgecls-pg-"))
    os.chown(folder, user.pw_uid, user.pw_gid)
    server = PostgresServer(folder, _free_port(), bin_dir)
    steps = [[str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres"],
             [str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-o",
              f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1", "start"],
             [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "tune"]]
    for step in steps:
        result = _as_postgres(step)
        if result.returncode != 0:
            server.stop()
            return None, f"{Path(step[0]).name} failed: {(result.stderr or result.stdout).strip()[-200:]}"
    return server, ""


def _as_postgres(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, text=True,
                          timeout=120, cwd="/")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
