"""``edgecls deploy``: a model running headless at boot on a device, set up over ssh.

Steps, each done only when needed so a second deploy changes nothing unless something
changed: prepare the environment with the target profile's ``edgecls[runtime-...]`` extra,
sync the model to ``~/.edgecls/deploy/<unit>/``, write the systemd unit (``edgecls run --headless``,
restarted on failure, JSON lines to the journal) and, with ``service``, install and enable it
(``sudo -n`` when not root; never a password), restarting it only when the model, the
environment or the unit changed. Without systemd running there (a container, an image),
the unit is installed and enabled for the next boot with ``systemctl --root``.
Before anything changes, a model replacing another one in the unit is judged
(``remote.replacement``): a worse one is refused unless forced, and the device's
``deployed.json`` records which model replaced which.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from edgecls.errors import ConfigError
from edgecls.remote.artifacts import model_files, model_format
from edgecls.remote.device import BACKEND_FORMATS, Environment, PrepareOptions, prepare
from edgecls.remote.host import HostSpec
from edgecls.remote.replacement import Replacement, judge_replacement, read_record, write_record
from edgecls.remote.ssh import RemoteError, SshOptions, SshTransport, last_line
from edgecls.remote.sync import sync_files
from edgecls.runtime.targets import load_target

UNIT_DIR = "etc/systemd/system"
DEPLOY_DIR = ".edgecls/deploy"  # one folder per unit: DEPLOY_DIR/<unit stem>/<model>


@dataclass
class DeployJob:
    """One model to deploy on one device.

    Attributes:
        target: target profile name (its backend decides the runtime extra; passed to ``edgecls run``).
        source: camera or stream on the device (default: the target's camera, else 0).
        service: install and enable the unit (else only print it).
        root: the device's root for the unit (``systemctl --root``), e.g. a mounted image; default ``/``.
        name: systemd unit name (default ``edgecls-<model stem>``).
        comparison: a saved ``edgecls compare NEW OLD --json`` report judging this replacement.
        force: deploy even when the comparison says the model is worse.
    """

    model: Path
    host: HostSpec
    target: str | None = None
    source: str | None = None
    service: bool = False
    root: str = "/"
    name: str | None = None
    comparison: Path | None = None
    force: bool = False
    ssh: SshOptions = field(default_factory=SshOptions)
    prepare: PrepareOptions = field(default_factory=PrepareOptions)

    @property
    def unit_name(self) -> str:
        stem = self.name or f"edgecls-{re.sub(r'[^A-Za-z0-9_.-]+', '-', self.model.stem)}"
        return stem if stem.endswith(".service") else f"{stem}.service"

    @property
    def model_dir(self) -> str:
        """Where the unit's model lives on the device (relative to its home)."""
        return f"{DEPLOY_DIR}/{self.unit_name.removesuffix('.service')}"


@dataclass
class DeployResult:
    """What a deploy found and did."""

    environment: Environment
    unit_name: str
    unit: str
    copied: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # e.g. "wrote ...", "enabled", "restarted"
    replacement: Replacement | None = None

    @property
    def changed(self) -> bool:
        return bool(self.copied or self.environment.installed or self.actions)


def deploy(job: DeployJob) -> DeployResult:
    """Deploys ``job.model`` on ``job.host``; see the module docstring.

    Raises:
        RemoteError: the host could not be reached, prepared or configured, or (with ``service``)
            it has no systemctl.
        ConfigError: an unknown target profile or unit name.
        EdgeclsError: the model is worse than the one it replaces (without ``force``).
    """
    formats = deploy_formats(job)
    transport = SshTransport(job.host, job.ssh)
    try:
        previous = read_record(transport, job.model_dir)
        replacement = judge_replacement(job.model, previous, job.comparison, job.force)
        environment = prepare(transport, formats, job.prepare, job.prepare.timeout_s)
        if job.service:
            require_systemctl(transport, environment)
        copied = sync_files(transport, model_files(job.model), job.model_dir, 600.0)
        if copied or previous is None:
            write_record(transport, job.model_dir, replacement.record(job.model))
        unit = unit_text(job, environment)
        result = DeployResult(environment, job.unit_name, unit, copied, replacement=replacement)
        if job.service:
            result.actions = install_unit(transport, job, environment, unit,
                                          restart=bool(copied or environment.installed))
        return result
    finally:
        transport.close()


def deploy_formats(job: DeployJob) -> set[str]:
    """The runtime the device needs: the target profile's backend and the model's own format."""
    formats = {model_format(job.model)} - {None}
    if not formats:
        raise ConfigError(f"{job.model} is not a .tflite, .onnx or OpenVINO .xml model")
    if job.target:
        formats.add(BACKEND_FORMATS[load_target(job.target).backend])
    return formats  # type: ignore[return-value]


def unit_text(job: DeployJob, environment: Environment) -> str:
    """The systemd unit running ``edgecls run`` headless for ``job``."""
    interpreter = environment.interpreter
    home = interpreter.home.rstrip("/")
    command = [interpreter.executable, "-m", "edgecls", "run", f"{home}/{job.model_dir}/{job.model.name}", "--headless"]
    if job.source:
        command += ["--source", job.source]
    if job.target:
        command += ["--target", job.target]
    return "\n".join([
        "# Written by `edgecls deploy`; re-running it updates this file only when it changes.",
        "[Unit]",
        f"Description=edgecls run {job.model.name}" + (f" ({job.target})" if job.target else ""),
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={interpreter.user}",
        f"WorkingDirectory={home}",
        "Environment=PYTHONUNBUFFERED=1",
        "ExecStart=" + " ".join(systemd_quote(arg) for arg in command),
        "Restart=always",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


@dataclass(frozen=True)
class UnitState:
    """What the device has now: the installed unit's text ("" when none), and systemd's view."""

    current: str
    enabled: bool
    active: bool


@dataclass(frozen=True)
class Step:
    """One command sent to the device; ``says`` is what the user is told it did (None: nothing)."""

    command: str
    says: str | None = None
    stdin: bytes | None = None


def require_systemctl(transport: SshTransport, environment: Environment) -> None:
    """Refuses ``--service`` on a device without systemctl, before anything is copied there."""
    if not environment.interpreter.systemctl:
        raise RemoteError(f"{transport.host.text}: systemctl is not installed there, so no systemd unit can "
                          "be installed (the device does not use systemd)",
                          "run deploy without --service: it copies the model and prints the `edgecls run` "
                          "command (the unit's ExecStart=) to start with the device's own init system")


def install_unit(transport: SshTransport, job: DeployJob, environment: Environment, unit: str,
                 restart: bool) -> list[str]:
    """Writes and enables the unit when needed; (re)starts it when systemd runs; returns what it did.

    Raises:
        RemoteError: a command failed there (e.g. sudo wants a password).
    """
    interpreter = environment.interpreter
    state = read_unit_state(transport, job)
    steps = install_steps(job, interpreter.uid == 0, interpreter.systemd, unit, state, restart)
    for step in steps:
        _privileged(transport, step.command, step.stdin)
    actions = [step.says for step in steps if step.says]
    if actions and not _is_live(job, interpreter.systemd):
        actions.append("not started: systemd is not running there; it starts at the next boot")
    return actions


def read_unit_state(transport: SshTransport, job: DeployJob) -> UnitState:
    """The installed unit's text and whether systemd has it enabled and running."""
    root = job.root.rstrip("/")
    name = shlex.quote(job.unit_name)
    path = shlex.quote(f"{root}/{UNIT_DIR}/{job.unit_name}")

    def answer(command: str) -> str:
        return transport.run(command, 60.0, check=False).stdout.decode(errors="replace")

    root_option = f" --root {shlex.quote(root)}" if root else ""
    return UnitState(current=answer(f"cat {path} 2>/dev/null"),
                     enabled=answer(f"systemctl{root_option} is-enabled {name} 2>/dev/null").strip() == "enabled",
                     active=answer(f"systemctl is-active {name} 2>/dev/null").strip() == "active")


def install_steps(job: DeployJob, as_root: bool, systemd_running: bool, unit: str, state: UnitState,
                  restart: bool) -> list[Step]:
    """The commands that bring the device from ``state`` to ``unit`` installed, enabled and running.

    Args:
        as_root: the ssh user is root (else every command goes through ``sudo -n``).
        systemd_running: systemd runs on the device (else the unit is enabled for the next boot).
        restart: the model or the environment changed, so a running service must restart.
    """
    sudo = "" if as_root else "sudo -n "
    root = job.root.rstrip("/")
    live = _is_live(job, systemd_running)
    systemctl = f"{sudo}systemctl" + (f" --root {shlex.quote(root)}" if root else "")
    name = shlex.quote(job.unit_name)
    steps = []
    if state.current != unit:
        path = f"{root}/{UNIT_DIR}/{job.unit_name}"
        folder, tmp = shlex.quote(f"{root}/{UNIT_DIR}"), shlex.quote(f"{root}/{UNIT_DIR}/.{job.unit_name}.tmp")
        steps.append(Step(f"{sudo}mkdir -p {folder} && {sudo}tee {tmp} >/dev/null && "
                          f"{sudo}mv -f {tmp} {shlex.quote(path)}", f"wrote {path}", unit.encode()))
        if live:
            steps.append(Step(f"{systemctl} daemon-reload"))
    if not state.enabled:
        steps.append(Step(f"{systemctl} enable {name}", "enabled at boot"))
    if live and (not state.active or restart or state.current != unit):
        steps.append(Step(f"{systemctl} restart {name}", "restarted" if state.active else "started"))
    return steps


def _is_live(job: DeployJob, systemd_running: bool) -> bool:
    """True when the unit goes to the running system (not to an image under ``--root``)."""
    return systemd_running and not job.root.rstrip("/")


def _privileged(transport: SshTransport, command: str, stdin: bytes | None = None) -> None:
    proc = transport.run(command, 120.0, stdin=stdin, check=False)
    if proc.returncode != 0:
        detail = last_line(proc.stderr) or f"exit code {proc.returncode}"
        hint = ("sudo asks for a password there, and edgecls never sends one: run the printed unit's "
                "install commands on the device, or allow this user passwordless sudo for systemctl"
                if "password" in detail.lower() else None)
        raise RemoteError(f"{transport.host.text}: `{command.split(' &&')[0]}` failed: {detail}", hint)


def systemd_quote(arg: str) -> str:
    """One ``ExecStart=`` word: ``%`` and ``$`` escaped, double-quoted when it has spaces or quotes."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and not re.search(r'[\s"\'\\;]', escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def install_commands(result: DeployResult) -> list[str]:
    """What to run on the device to install the printed unit by hand."""
    name = shlex.quote(result.unit_name)
    return [f"sudo tee /{UNIT_DIR}/{name} >/dev/null   # paste the unit above, then Ctrl+D",
            f"sudo systemctl daemon-reload && sudo systemctl enable --now {name}"]
