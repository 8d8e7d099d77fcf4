"""A real OpenSSH server on 127.0.0.1 for the remote tests, with generated keys.

``SshLab`` makes one user key and an ssh client config (``ssh -F``) that trusts the host
keys of the servers it started with ``trusted=True``; each ``SshServer`` is an ``sshd -D``
on a free port whose sessions get ``HOME`` and ``PYTHONPATH`` pointing at the test's
folders, so the "device" runs this checkout with this machine's Python, and nothing is
written to the real home directory.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/usr/bin/sshd")


def find_sshd() -> str | None:
    """Path of the sshd executable, or None."""
    found = shutil.which("sshd")
    return found or next((c for c in SSHD_CANDIDATES if os.access(c, os.X_OK)), None)


def missing_tools() -> str | None:
    """Why the tests cannot run here (None when sshd, ssh and ssh-keygen exist)."""
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install openssh-client)"
    if find_sshd() is None:
        return "sshd is not installed (apt-get install openssh-server)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class SshServer:
    """One running sshd."""

    root: Path
    port: int
    home: Path
    process: subprocess.Popen
    host_public_key: str

    @property
    def spec(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class SshLab:
    """A user key, a client config and the servers started for one test session."""

    root: Path
    servers: list[SshServer] = field(default_factory=list)
    trusted: list[SshServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.user_key = keygen(self.root / "id_ed25519")
        self.config = self.root / "ssh_config"
        self.known_hosts = self.root / "known_hosts"
        self._write_client_files()

    def start(self, name: str, trusted: bool = True, env: dict[str, str] | None = None) -> SshServer:
        """Starts an sshd on a free port; ``trusted`` puts its key in the lab's known_hosts."""
        root = self.root / name
        home = root / "home"
        home.mkdir(parents=True)
        host_key = keygen(root / "host_key")
        (root / "authorized_keys").write_text(self.user_key.with_suffix(".pub").read_text())
        port = free_port()
        settings = {"PYTHONPATH": str(REPO), "HOME": str(home), **(env or {})}
        (root / "sshd_config").write_text(_sshd_config(root, port, host_key, settings))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        with (root / "sshd.log").open("wb") as log:  # sshd keeps its own copy of the descriptor
            process = subprocess.Popen([find_sshd(), "-D", "-e", "-f", str(root / "sshd_config")],
                                       stdout=subprocess.DEVNULL, stderr=log)
        server = SshServer(root, port, home, process, host_key.with_suffix(".pub").read_text().strip())
        self.servers.append(server)
        _wait_listening(port, process, root / "sshd.log")
        if trusted:
            self.trusted.append(server)
            self._write_client_files()
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def _write_client_files(self) -> None:
        self.known_hosts.write_text("".join(
            f"[127.0.0.1]:{s.port} {' '.join(s.host_public_key.split()[:2])}\n" for s in self.trusted))
        aliases = "".join(f"Host device-{i}\n  HostName 127.0.0.1\n  Port {s.port}\n"
                          for i, s in enumerate(self.trusted))
        self.config.write_text(
            aliases + "Host *\n"
            f"  User {getpass.getuser()}\n"
            f"  IdentityFile {self.user_key}\n  IdentitiesOnly yes\n  IdentityAgent none\n"
            f"  UserKnownHostsFile {self.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
        )


def _sshd_config(root: Path, port: int, host_key: Path, env: dict[str, str]) -> str:
    lines = [
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PubkeyAuthentication yes",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", "AllowTcpForwarding yes", "X11Forwarding no",
        "LogLevel ERROR", "MaxStartups 50", "MaxSessions 50",
        "SetEnv " + " ".join(f"{key}={value}" for key, value in env.items()),
    ]
    return "\n".join(lines) + "\n"


def _wait_listening(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text()[-500:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on port {port} within {timeout_s} s")


# The device's ``python3``: this test's Python, logging when each ``edgecls bench`` starts and ends.
_DEVICE_PYTHON = """#!/bin/sh
case "$*" in
  *"-m edgecls bench"*)
    echo "start $(date +%s.%N)" >> "$HOME/bench.log"
    "{python}" "$@"; code=$?
    echo "end $(date +%s.%N)" >> "$HOME/bench.log"
    exit $code;;
esac
exec "{python}" "$@"
"""


def start_python_device(lab: SshLab, name: str, site: Path, python: str) -> SshServer:
    """A "device" whose ``python3`` (on its PATH) is ``python`` running this checkout: a bench
    over ssh finds it and reuses it as it is, nothing installed. ``site`` comes first on its
    PYTHONPATH (a package's dist-info there changes the version the device reports). Each
    ``edgecls bench`` it runs adds its start and end (epoch seconds) to ``HOME/bench.log``."""
    bin_dir = lab.root / f"{name}-bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "python3"
    wrapper.write_text(_DEVICE_PYTHON.format(python=python))
    wrapper.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": f"{site}:{REPO}"}
    return lab.start(name, env=env)


def bench_intervals(server: SshServer) -> list[tuple[float, float]]:
    """(start, end) of each ``edgecls bench`` a ``start_python_device`` ran, in start order."""
    log = server.home / "bench.log"
    lines = log.read_text().split() if log.is_file() else []
    starts = [float(v) for k, v in zip(lines[::2], lines[1::2]) if k == "start"]
    ends = [float(v) for k, v in zip(lines[::2], lines[1::2]) if k == "end"]
    return sorted(zip(starts, ends))
