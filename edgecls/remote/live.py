"""``edgecls run --remote``: the live loop on the device, its JSON lines streamed back here.

The model (and labels file) is synced to ``~/.edgecls/run`` on the device, then
``edgecls run`` starts there under a small POSIX-shell guard: when the ssh connection ends
(Ctrl+C here, a dropped network), the guard sees end-of-file on the session's stdin and
sends the run SIGTERM, which ends it cleanly, so no orphan keeps the camera. With
``--serve``, the device serves on its own loopback, on a free port it picks, and a second
ssh connection forwards a local port to it (``ssh -N -L``): no port is opened on the
device's network and a service already serving there is not in the way.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from edgecls.remote.artifacts import model_files, model_format
from edgecls.remote.device import PrepareOptions, prepare
from edgecls.remote.host import HostSpec
from edgecls.remote.ssh import (
    RemoteError,
    SshOptions,
    SshTransport,
    last_line,
    shell_path,
)
from edgecls.remote.sync import sync_files

RUN_DIR = ".edgecls/run"  # apart from deployed models, which a run must never replace
_SERVING = re.compile(r"streaming on http://[^/\s]+:(\d+)/")


@dataclass
class RemoteRun:
    """One live run on a device.

    Attributes:
        model: the local model file (with its ``.bin`` for OpenVINO).
        args: ``edgecls run`` options for the device, without the model (nor ``--serve``/``--port``).
        labels: a local labels file to send along (its device path replaces ``--labels``).
        serve_port: with ``--serve``: the local port forwarded to the device's stream.
    """

    model: Path
    host: HostSpec
    args: list[str] = field(default_factory=list)
    labels: Path | None = None
    serve_port: int | None = None
    ssh: SshOptions = field(default_factory=SshOptions)
    prepare: PrepareOptions = field(default_factory=PrepareOptions)


class LiveSession:
    """The ssh process running the loop on the device (and the forward, with ``--serve``)."""

    def __init__(self, job: RemoteRun, out: IO[str], err: IO[str]) -> None:
        self.job, self.out, self.err = job, out, err
        self.transport = SshTransport(job.host, job.ssh)
        self.process: subprocess.Popen[bytes] | None = None
        self.forwarder: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Connects, prepares the device, syncs the model and starts the loop there."""
        job = self.job
        self.err.write(f"{job.host.text}: connecting and checking the environment...\n")
        self.err.flush()
        fmt = model_format(job.model)
        environment = prepare(self.transport, {fmt} if fmt else set(), job.prepare, job.prepare.timeout_s)
        files = model_files(job.model)
        if job.labels is not None:
            files[f"{job.model.stem}.labels.txt"] = job.labels
        copied = sync_files(self.transport, files, RUN_DIR, 600.0)
        self.err.write(f"{job.host.text}: {environment.describe()}; "
                       f"{'copied ' + ', '.join(copied) if copied else 'model unchanged'}\n")
        args = [f"{RUN_DIR}/{job.model.name}", *job.args]
        if job.labels is not None:
            args += ["--labels", f"{RUN_DIR}/{job.model.stem}.labels.txt"]
        if job.serve_port is not None:
            args += ["--serve", "--port", "0"]  # the device picks a free port on its loopback
        self.process = self.transport.popen(guarded(environment.python, args), stdin_pipe=True)

    def relay(self) -> int:
        """Copies the device's output here until the loop ends; returns its exit code."""
        assert self.process is not None
        errors = threading.Thread(target=self._copy_stderr, daemon=True)
        errors.start()
        for line in iter(self.process.stdout.readline, b""):
            self.out.write(line.decode(errors="replace"))
            self.out.flush()
        code = self.process.wait()
        errors.join(timeout=5)
        return code

    def stop(self) -> None:
        """Ends both ssh clients (the device's guard then stops the loop)."""
        for process in (self.forwarder, self.process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.transport.close()

    def _copy_stderr(self) -> None:
        for raw in iter(self.process.stderr.readline, b""):
            line = raw.decode(errors="replace")
            serving = _SERVING.search(line)
            if serving and self.job.serve_port is not None and self.forwarder is None:
                self._forward(int(serving.group(1)))
                continue
            self.err.write(line)
            self.err.flush()

    def _forward(self, device_port: int) -> None:
        local = self.job.serve_port
        self.forwarder = self.transport.forward(local, device_port)
        if wait_listening(local, self.forwarder):
            self.err.write(f"streaming on http://127.0.0.1:{local}/ (forwarded over ssh to "
                           f"{self.job.host.text}, port {device_port} on its loopback)\n")
        else:
            reason = last_line(self.forwarder.stderr.read()) if self.forwarder.stderr else ""
            self.err.write(f"error: cannot forward 127.0.0.1:{local} to {self.job.host.text}: "
                           f"{reason or 'ssh ended'}\n")
        self.err.flush()


def guarded(python: str, args: list[str]) -> str:
    """Shell text running ``python -m edgecls run ARGS`` that ends when the ssh session does."""
    run = f"{python} -m edgecls run {' '.join(_home_relative(a) for a in args)}"
    return ("exec 3<&0; "
            f"{run} </dev/null & pid=$!; "
            "( cat <&3 >/dev/null; kill -TERM $pid 2>/dev/null ) >/dev/null 2>&1 & watcher=$!; "
            "wait $pid; rc=$?; kill $watcher 2>/dev/null; exit $rc")


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> bool:
    """True once 127.0.0.1:``port`` accepts connections (False if ``process`` ended first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def free_local_port() -> int:
    """A port on this machine's loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_local_port(port: int) -> None:
    """Refuses a local port something already listens on, before connecting anywhere."""
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise RemoteError(f"port {port} is already in use on this machine", "pick another --port")


def _home_relative(arg: str) -> str:
    """Model paths under ``.edgecls/`` resolve against the device's ``$HOME``; the rest is quoted."""
    return shell_path(arg) if arg.startswith(".edgecls/") else shlex.quote(arg)
