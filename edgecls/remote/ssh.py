"""The transport: the system OpenSSH client, as the user already configured and trusts it.

Every call is ``ssh [options] DESTINATION COMMAND``, so ``~/.ssh/config`` (aliases, ``User``,
``Port``, ``IdentityFile``, ``ProxyJump``), the agent and ``known_hosts`` apply unchanged.
Connections are non-interactive (``BatchMode=yes``: key or agent authentication only, never a
password prompt) and host keys are checked strictly (``StrictHostKeyChecking=yes``: an unknown
host is refused, with the command that trusts it). Files travel as a tar stream over the same
channel, so nothing but ``sh`` and ``tar`` is needed on the device.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgecls.errors import EdgeclsError
from edgecls.remote.host import HostSpec

SSH_CONFIG_ENV = "EDGECLS_SSH_CONFIG"
STATUS_PASSED = "passed"
STATUS_FAILED = "failed"
STATUS_UNREACHABLE = "unreachable"

# ssh's own failures (exit code 255) that mean the device could not be reached at all.
_UNREACHABLE_MARKERS = ("connection refused", "connection timed out", "no route to host",
                        "could not resolve hostname", "network is unreachable", "name or service not known",
                        "operation timed out", "connection closed by", "connection reset by",
                        "temporary failure in name resolution", "not responding")


class RemoteError(EdgeclsError):
    """Something went wrong with one host; ``status`` is how the host is reported."""

    def __init__(self, message: str, hint: str | None = None, status: str = STATUS_FAILED) -> None:
        super().__init__(message, hint)
        self.status = status


@dataclass
class SshOptions:
    """How to reach hosts.

    Attributes:
        config_file: an ssh config file instead of ``~/.ssh/config`` (``ssh -F``); default from
            ``$EDGECLS_SSH_CONFIG``.
        connect_timeout_s: seconds to wait for the TCP connection and the handshake.
        options: more ``-o Key=Value`` settings (e.g. ``UserKnownHostsFile=...``).
        multiplex: share one connection per host between the many short calls of a command
            (OpenSSH ``ControlMaster``, socket in a private temporary folder); ``close`` ends it.
    """

    config_file: Path | None = field(default_factory=lambda: _env_config_file())
    connect_timeout_s: float = 10.0
    options: list[str] = field(default_factory=list)
    multiplex: bool = True
    _control_dir: str | None = field(default=None, repr=False)

    def control_path(self) -> str:
        """Where the shared connections' sockets live (``%C``: a hash of host, port and user)."""
        if self._control_dir is None:
            self._control_dir = tempfile.mkdtemp(prefix="edgecls-ssh-")  # mode 0700
            atexit.register(shutil.rmtree, self._control_dir, ignore_errors=True)
        return f"{self._control_dir}/%C"


def _env_config_file() -> Path | None:
    value = os.environ.get(SSH_CONFIG_ENV)
    return Path(value).expanduser() if value else None


class SshTransport:
    """Runs commands on and copies files to one host through the ``ssh`` executable."""

    def __init__(self, host: HostSpec, options: SshOptions | None = None) -> None:
        self.host = host
        self.options = options or SshOptions()

    def base_args(self, shared: bool = True) -> list[str]:
        """``ssh`` and every option, up to (not including) the destination.

        ``shared``: go through the host's shared connection when multiplexing is on.
        """
        args = ["ssh"]
        if self.options.config_file:
            args += ["-F", str(self.options.config_file)]
        settings = ["BatchMode=yes", "StrictHostKeyChecking=yes",
                    f"ConnectTimeout={max(1, round(self.options.connect_timeout_s))}",
                    "ServerAliveInterval=10", "ServerAliveCountMax=3", *self.options.options]
        if self.options.multiplex and shared:
            settings += ["ControlMaster=auto", f"ControlPath={self.options.control_path()}", "ControlPersist=60"]
        else:
            settings += ["ControlMaster=no", "ControlPath=none"]
        for setting in settings:
            args += ["-o", setting]
        return args + self.host.ssh_port_args()

    def command(self, remote: str) -> list[str]:
        """The argv running POSIX shell text ``remote`` on the host.

        Wrapped in ``sh -c`` so a login shell such as fish does not have to parse it.
        """
        return [*self.base_args(), "--", self.host.destination, f"sh -c {shlex.quote(remote)}"]

    def run(self, remote: str, timeout_s: float, stdin: bytes | Path | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Runs ``remote`` (shell text) and returns the finished process.

        Raises:
            RemoteError: the host could not be reached (``unreachable``), refused us, timed out,
                or (with ``check``) the command exited non-zero (``failed``).
        """
        argv = self.command(remote)
        try:
            if isinstance(stdin, Path):
                with stdin.open("rb") as handle:
                    proc = subprocess.run(argv, stdin=handle, capture_output=True, timeout=timeout_s, check=False)
            else:
                proc = subprocess.run(argv, input=stdin or b"", capture_output=True, timeout=timeout_s,
                                      check=False)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.host.text}: timed out after {timeout_s:.0f} s") from None
        except FileNotFoundError:
            raise EdgeclsError("the ssh client is not installed",
                               "install OpenSSH (e.g. apt-get install openssh-client)") from None
        if proc.returncode == 255:
            raise self.connection_error(proc.stderr.decode(errors="replace"))
        if check and proc.returncode != 0:
            raise RemoteError(f"{self.host.text}: `{_short(remote)}` exited with {proc.returncode}: "
                              f"{last_line(proc.stderr) or last_line(proc.stdout) or 'no output'}")
        return proc

    def connect(self, timeout_s: float) -> None:
        """Opens one session to check the host is reachable and trusted."""
        self.run("true", timeout_s)

    def put(self, files: dict[str, Path], remote_dir: str, timeout_s: float) -> None:
        """Copies local ``files`` (archive name -> path) into ``remote_dir`` (see ``shell_path``)."""
        with tempfile.TemporaryDirectory(prefix="edgecls-ssh-") as tmp:
            archive = Path(tmp) / "files.tar"
            with tarfile.open(archive, "w") as tar:
                for name, path in files.items():
                    tar.add(str(path), arcname=name, recursive=True)
            quoted = shell_path(remote_dir)
            self.run(f"mkdir -p {quoted} && tar -xf - -C {quoted}", timeout_s, stdin=archive)

    def read(self, remote_path: str, timeout_s: float) -> bytes:
        """The bytes of one remote file (see ``shell_path``)."""
        return self.run(f"cat {shell_path(remote_path)}", timeout_s).stdout

    def popen(self, remote: str, stdin_pipe: bool = False) -> subprocess.Popen[bytes]:
        """Starts ``remote`` with stdout and stderr piped back (for streams); the caller waits.

        ``stdin_pipe`` keeps the session's stdin open (a pipe nobody writes to) so the device
        sees end-of-file only when this client ends.
        """
        stdin = subprocess.PIPE if stdin_pipe else subprocess.DEVNULL
        return subprocess.Popen(self.command(remote), stdin=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def forward(self, local_port: int, remote_port: int) -> subprocess.Popen[bytes]:
        """Starts ``ssh -N -L`` forwarding 127.0.0.1:``local_port`` here to the device's loopback."""
        spec = f"127.0.0.1:{local_port}:127.0.0.1:{remote_port}"
        return subprocess.Popen([*self.base_args(shared=False), "-N", "-L", spec,
                                 "-o", "ExitOnForwardFailure=yes", "--", self.host.destination],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def close(self) -> None:
        """Ends the shared connection to this host, if one was opened."""
        if not self.options.multiplex or self.options._control_dir is None:
            return
        try:
            subprocess.run([*self.base_args(), "-O", "exit", self.host.destination], capture_output=True,
                           timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass  # the master ends by itself after ControlPersist

    def connection_error(self, stderr: str) -> RemoteError:
        """Turns ssh's own failure (exit 255) into a host status with a reason and a hint."""
        text = stderr.strip()
        lower = text.lower()
        if "host key verification failed" in lower or "no " in lower and "host key is known" in lower:
            if "identification has changed" in lower:
                return RemoteError(f"{self.host.text}: its host key CHANGED since it was trusted: refused",
                                   "if the device was reinstalled, remove the old key with "
                                   f"`ssh-keygen -R {self._keyscan_host()}` and trust the new one")
            return RemoteError(f"{self.host.text}: unknown host key: refused (StrictHostKeyChecking)",
                               f"check the fingerprint, then trust it: {self.trust_command()}")
        if "permission denied" in lower:
            return RemoteError(f"{self.host.text}: authentication refused ({last_line(text)})",
                               f"set up a key: ssh-copy-id {self.host.destination} (passwords are never used)")
        if any(marker in lower for marker in _UNREACHABLE_MARKERS):
            return RemoteError(f"{self.host.text}: unreachable: {last_line(text)}", status=STATUS_UNREACHABLE)
        return RemoteError(f"{self.host.text}: ssh failed: {last_line(text) or 'exit code 255'}")

    def trust_command(self) -> str:
        """The commands that add the host's key to known_hosts (after checking its fingerprint)."""
        host, port = self.resolve()
        port_args = ["-p", str(port)] if port != 22 else []
        config = ["-F", str(self.options.config_file)] if self.options.config_file else []
        keyscan = shlex.join(["ssh-keyscan", *port_args, host]) + " >> ~/.ssh/known_hosts"
        once = shlex.join(["ssh", *config, *self.host.ssh_port_args(), self.host.destination, "true"])
        return f"{keyscan}   (or connect once and answer yes: {once})"

    def _keyscan_host(self) -> str:
        host, port = self.resolve()
        return f"[{host}]:{port}" if port != 22 else host

    def resolve(self) -> tuple[str, int]:
        """(host name, port) after ssh's config is applied (``ssh -G``; no network)."""
        argv = ["ssh", "-G", *(["-F", str(self.options.config_file)] if self.options.config_file else []),
                *self.host.ssh_port_args(), self.host.destination]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        values = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        port = values.get("port", str(self.host.port or 22))
        return values.get("hostname", self.host.host), int(port) if port.isdigit() else 22


def shell_path(path: str) -> str:
    """Shell text for a remote path: absolute as given, else under the remote ``$HOME``."""
    if path.startswith("/"):
        return shlex.quote(path)
    return '"$HOME"/' + shlex.quote(path.removeprefix("~/"))


def last_line(text: bytes | str) -> str:
    """The last non-empty line of a process output (where tools put the error)."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _short(command: str, limit: int = 60) -> str:
    return command if len(command) <= limit else command[: limit - 3] + "..."
