"""Device preparation: find (or make) a Python environment on the host that runs edgecls.

Order: the ``--remote-python`` the user named; else ``~/.edgecls/venv``; else ``python3``
on the device's PATH. One with the same edgecls version as this machine and the inference
library each artifact needs is reused as it is. Otherwise ``~/.edgecls/venv`` is created
(or completed) and ``edgecls[runtime-...]`` installed there: from the package index, or,
for a device without internet, from wheels this machine downloaded for the device's
platform and Python (``wheels.py``) and copied over. What was installed is reported.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import edgecls
from edgecls.formats import FORMATS
from edgecls.remote.ssh import RemoteError, SshTransport, last_line, shell_path
from edgecls.remote.sync import sync_files
from edgecls.remote.wheels import DevicePlatform, build_wheelhouse

VENV = ".edgecls/venv"
VENV_PYTHON = f"{VENV}/bin/python"
WHEELS_DIR = ".edgecls/wheels"
INSTALL_POLICIES = ("index", "wheels", "never")

# Which importable module serves each format, and the pip extra that installs it (edgecls.formats).
FORMAT_MODULES = {fmt.name: fmt.runtime_modules for fmt in FORMATS}
FORMAT_EXTRAS = {fmt.name: fmt.runtime_extra for fmt in FORMATS}
BACKEND_FORMATS = {fmt.backend: fmt.name for fmt in FORMATS}
_PROBED_MODULES = sorted({m for modules in FORMAT_MODULES.values() for m in modules} | {"numpy", "cv2"})

# Runs on the device under each candidate interpreter: what it is and what it can import.
_PROBE = f"""
import getpass, importlib.util, json, os, platform, shutil, sys
info = {{"python": sys.argv[1], "executable": sys.executable, "version": platform.python_version(),
        "machine": platform.machine(), "libc": list(platform.libc_ver()), "home": os.path.expanduser("~"),
        "venv": sys.prefix != sys.base_prefix, "edgecls": None, "user": getpass.getuser(), "uid": os.getuid(),
        "systemd": os.path.isdir("/run/systemd/system"), "systemctl": shutil.which("systemctl") is not None}}
try:
    import edgecls
    info["edgecls"] = edgecls.__version__
except Exception:
    pass
info["modules"] = {{m: importlib.util.find_spec(m) is not None for m in {_PROBED_MODULES!r}}}
print(json.dumps(info))
"""


@dataclass
class Interpreter:
    """One Python found on the device."""

    python: str  # as invoked (a path under $HOME, or "python3")
    version: str
    machine: str
    libc: list[str]
    home: str
    edgecls: str | None
    modules: dict[str, bool]
    venv: bool = False
    executable: str = ""  # absolute path (sys.executable there)
    user: str = ""
    uid: int = -1
    systemd: bool = False  # systemd is running (/run/systemd/system exists)
    systemctl: bool = False  # systemctl is on the PATH (it can enable a unit even when systemd is not running)

    @classmethod
    def from_probe(cls, data: dict[str, Any]) -> Interpreter:
        return cls(python=data["python"], version=data["version"], machine=data["machine"],
                   libc=list(data.get("libc") or ["", ""]), home=data["home"], edgecls=data.get("edgecls"),
                   modules=dict(data.get("modules") or {}), venv=bool(data.get("venv")),
                   executable=data.get("executable", ""), user=data.get("user", ""), uid=int(data.get("uid", -1)),
                   systemd=bool(data.get("systemd")), systemctl=bool(data.get("systemctl")))

    def missing_formats(self, formats: set[str]) -> list[str]:
        """Formats none of whose inference libraries this interpreter can import."""
        return sorted(f for f in formats if not any(self.modules.get(m) for m in FORMAT_MODULES[f]))

    @property
    def python_tag(self) -> str:
        """``3.11`` for Python 3.11.2."""
        return ".".join(self.version.split(".")[:2])


@dataclass
class Environment:
    """The environment a host runs edgecls in, and what preparing it did."""

    python: str  # shell text that runs it (see ``shell_path``)
    interpreter: Interpreter
    action: str  # "reused" | "created" | "updated"
    installed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the user: which env, and what was installed into it."""
        where = f"{self.interpreter.python} (Python {self.interpreter.version}, {self.interpreter.machine})"
        text = f"{self.action} {where}"
        if self.installed:
            text += "; installed " + ", ".join(self.installed)
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"python": self.interpreter.python, "python_version": self.interpreter.version,
                "machine": self.interpreter.machine, "edgecls": self.interpreter.edgecls, "action": self.action,
                "installed": self.installed}


@dataclass
class PrepareOptions:
    """How to get a usable environment.

    Attributes:
        python: an interpreter on the device to use (never installed into).
        install: "index" (pip from the package index), "wheels" (from ``wheelhouse``, made on
            this machine for the device), or "never" (reuse only).
        wheelhouse: local folder of wheels for the device (``install="wheels"``); default: downloaded
            for the device's platform and Python into the cache (``wheels.py``).
        timeout_s: seconds allowed for creating the venv and installing.
    """

    python: str | None = None
    install: str = "index"
    wheelhouse: Path | None = None
    timeout_s: float = 1800.0


def probe(transport: SshTransport, python: str | None, timeout_s: float) -> list[Interpreter]:
    """Every candidate interpreter the device has, in preference order."""
    candidates = [python] if python else [VENV_PYTHON, "python3"]
    script = "; ".join(
        f'if command -v {_shell_python(c)} >/dev/null 2>&1; then {_shell_python(c)} -c {shlex.quote(_PROBE)} '
        f'{shlex.quote(c)} 2>/dev/null; fi' for c in candidates)
    out = transport.run(script, timeout_s, check=False).stdout.decode(errors="replace")
    found = []
    for line in out.splitlines():
        try:
            found.append(Interpreter.from_probe(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def prepare(transport: SshTransport, formats: set[str], options: PrepareOptions,
            timeout_s: float) -> Environment:
    """An environment on the host that runs this edgecls version with ``formats``' backends.

    Raises:
        RemoteError: no usable interpreter and installing is not allowed or failed.
    """
    found = probe(transport, options.python, min(timeout_s, 120.0))
    host = transport.host.text
    if options.python:
        return _use_given(found, options.python, formats, host)
    for interpreter in found:
        if interpreter.edgecls == edgecls.__version__ and not interpreter.missing_formats(formats):
            return Environment(_shell_python(interpreter.python), interpreter, "reused")
    if options.install == "never":
        raise RemoteError(f"{host}: no Python there has edgecls {edgecls.__version__} with "
                          f"{', '.join(sorted(formats))} support", _install_hint())
    venv = next((i for i in found if i.python == VENV_PYTHON), None)
    return _install(transport, venv, found, formats, options, timeout_s)


def _use_given(found: list[Interpreter], python: str, formats: set[str], host: str) -> Environment:
    if not found:
        raise RemoteError(f"{host}: --remote-python {python} is not an interpreter there",
                          "give the path of a Python on the device, e.g. /usr/bin/python3")
    interpreter = found[0]
    if interpreter.edgecls != edgecls.__version__:
        have = f"edgecls {interpreter.edgecls}" if interpreter.edgecls else "no edgecls"
        raise RemoteError(f"{host}: {python} has {have}, this machine runs {edgecls.__version__}",
                          f"install edgecls {edgecls.__version__} there, or drop --remote-python to let "
                          "edgecls set up ~/.edgecls/venv")
    missing = interpreter.missing_formats(formats)
    if missing:
        extras = ",".join(FORMAT_EXTRAS[f] for f in missing)
        raise RemoteError(f"{host}: {python} cannot run {', '.join(missing)} models (no inference library)",
                          f"there: {python} -m pip install \"edgecls[{extras}]=={edgecls.__version__}\"")
    return Environment(_shell_python(python), interpreter, "reused")


def _install(transport: SshTransport, venv: Interpreter | None, found: list[Interpreter], formats: set[str],
             options: PrepareOptions, timeout_s: float) -> Environment:
    host = transport.host.text
    action = "updated" if venv else "created"
    if venv is None:
        base = next((i for i in found if i.python == "python3"), None)
        if base is None or tuple(int(x) for x in base.python_tag.split(".")) < (3, 10):
            raise RemoteError(f"{host}: no Python 3.10+ found to create {VENV} in",
                              "install python3 (3.10 or newer) and python3-venv on the device")
        made = transport.run(f"python3 -m venv {shell_path(VENV)}", min(timeout_s, 300.0), check=False)
        if made.returncode != 0:
            raise RemoteError(f"{host}: creating ~/{VENV} failed: {last_line(made.stdout + made.stderr)}",
                              "on Debian / Raspberry Pi OS: sudo apt install python3-venv")
        venv = base
    requirement = requirement_for(formats)
    pip = f"{shell_path(VENV_PYTHON)} -m pip install --disable-pip-version-check"
    if options.install == "wheels":
        wheelhouse = options.wheelhouse or download_wheels(venv, requirement)
        sync_files(transport, {p.name: p for p in sorted(wheelhouse.glob("*.whl"))}, WHEELS_DIR, timeout_s)
        pip += f" --no-index --find-links {shell_path(WHEELS_DIR)}"
    proc = transport.run(f"{pip} {shlex.quote(requirement)}", min(timeout_s, options.timeout_s), check=False)
    if proc.returncode != 0:
        raise RemoteError(f"{host}: installing {requirement} into ~/{VENV} failed: {last_line(proc.stderr)}",
                          _install_hint())
    installed = probe(transport, VENV_PYTHON, 120.0)
    if not installed or installed[0].edgecls != edgecls.__version__ or installed[0].missing_formats(formats):
        raise RemoteError(f"{host}: ~/{VENV} still cannot run {', '.join(sorted(formats))} models after "
                          f"installing {requirement}")
    return Environment(_shell_python(VENV_PYTHON), installed[0], action, installed_packages(proc.stdout))


def download_wheels(interpreter: Interpreter, requirement: str) -> Path:
    """The wheelhouse for ``interpreter``'s platform and Python, downloaded on this machine."""
    platform = DevicePlatform(interpreter.machine, interpreter.python_tag, tuple(interpreter.libc))
    return build_wheelhouse(platform, [requirement])


def requirement_for(formats: set[str]) -> str:
    """``edgecls[runtime-onnx,runtime-tflite]==VERSION`` for the formats to run."""
    extras = ",".join(sorted(FORMAT_EXTRAS[f] for f in formats))
    return f"edgecls[{extras}]=={edgecls.__version__}" if extras else f"edgecls=={edgecls.__version__}"


def installed_packages(pip_output: bytes) -> list[str]:
    """The ``name-version`` items of pip's "Successfully installed ..." line."""
    for line in pip_output.decode(errors="replace").splitlines():
        if line.startswith("Successfully installed "):
            return line.removeprefix("Successfully installed ").split()
    return []


def _shell_python(python: str) -> str:
    """Shell text running ``python``: a bare command name as is, a path via ``shell_path``."""
    return shlex.quote(python) if "/" not in python else shell_path(python)


def _install_hint() -> str:
    return ("on a device without internet use --install wheels (this machine downloads the wheels for "
            "it), or point --remote-python at a Python that has edgecls " + edgecls.__version__)
