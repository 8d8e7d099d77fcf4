"""Device preparation: find (or make) a Python environment on the host that runs edgecls.

Order: the ``--remote-python`` the user named; else ``~/.edgecls/venv``; else ``python3``
on the device's PATH. One with the same edgecls *build* as this machine (a digest of the
package files, ``build_info``: every build of a release shares ``__version__``) and the
inference library each artifact needs is reused as it is. Otherwise ``~/.edgecls/venv`` is
created (or completed) and this machine's edgecls installed there as a wheel built here
(``install.py``), its dependencies from the device's package index or from wheels this
machine downloaded for the device. What was installed, and how, is reported.
"""

from __future__ import annotations

import inspect
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import edgecls
from edgecls.build_info import package_digest, this_build
from edgecls.formats import FORMATS
from edgecls.remote.ssh import RemoteError, SshTransport, shell_path

VENV = ".edgecls/venv"
VENV_PYTHON = f"{VENV}/bin/python"
WHEELS_DIR = ".edgecls/wheels"
INSTALL_POLICIES = ("index", "wheels", "never")

# Which importable module serves each format, and the pip extra that installs it (edgecls.formats).
FORMAT_MODULES = {fmt.name: fmt.runtime_modules for fmt in FORMATS}
FORMAT_EXTRAS = {fmt.name: fmt.runtime_extra for fmt in FORMATS}
BACKEND_FORMATS = {fmt.backend: fmt.name for fmt in FORMATS}
_PROBED_MODULES = sorted({m for modules in FORMAT_MODULES.values() for m in modules} | {"numpy", "cv2"})

# Runs on the device under each candidate interpreter: what it is, what it can import, and
# which edgecls build it has (``package_digest`` is defined first, from its own source).
_PROBE = inspect.getsource(package_digest) + f"""
import getpass, importlib.util, json, os, platform, shutil, sys
info = {{"python": sys.argv[1], "executable": sys.executable, "version": platform.python_version(),
        "machine": platform.machine(), "libc": list(platform.libc_ver()), "home": os.path.expanduser("~"),
        "venv": sys.prefix != sys.base_prefix, "edgecls": None, "build": None, "user": getpass.getuser(),
        "uid": os.getuid(), "systemd": os.path.isdir("/run/systemd/system"),
        "systemctl": shutil.which("systemctl") is not None}}
try:
    import edgecls
    info["edgecls"] = edgecls.__version__
    info["build"] = package_digest(os.path.dirname(os.path.abspath(edgecls.__file__)))
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
    build: str | None = None  # build_info.package_digest of its edgecls
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
                   modules=dict(data.get("modules") or {}), venv=bool(data.get("venv")), build=data.get("build"),
                   executable=data.get("executable", ""), user=data.get("user", ""), uid=int(data.get("uid", -1)),
                   systemd=bool(data.get("systemd")), systemctl=bool(data.get("systemctl")))

    @property
    def same_build(self) -> bool:
        """Its edgecls is the very build this machine runs."""
        return self.build is not None and self.build == this_build()

    def describe_edgecls(self) -> str:
        """"no edgecls", or "edgecls 0.1.0 (build 1a2b3c4d5e6f)"."""
        return f"edgecls {self.edgecls} (build {(self.build or '?')[:12]})" if self.edgecls else "no edgecls"

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
    source: str | None = None  # how edgecls and its dependencies got there (``install.py``)

    def describe(self) -> str:
        """One line for the user: which env, and what was installed into it."""
        where = f"{self.interpreter.python} (Python {self.interpreter.version}, {self.interpreter.machine})"
        text = f"{self.action} {where}"
        if self.installed:
            text += "; installed " + ", ".join(self.installed)
        if self.source:
            text += f" ({self.source})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"python": self.interpreter.python, "python_version": self.interpreter.version,
                "machine": self.interpreter.machine, "edgecls": self.interpreter.edgecls,
                "build": self.interpreter.build, "action": self.action, "installed": self.installed,
                "source": self.source}


@dataclass
class PrepareOptions:
    """How to get a usable environment.

    Attributes:
        python: an interpreter on the device to use (never installed into).
        install: "index" (this machine's edgecls wheel, its dependencies from the device's index,
            falling back to "wheels" when the device's pip cannot reach one), "wheels" (all from
            ``wheelhouse``, made on this machine for the device), or "never" (reuse only).
        wheelhouse: local folder of dependency wheels for the device; default: downloaded for the
            device's platform and Python into the cache (``wheels.py``).
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
        f'if command -v {shell_python(c)} >/dev/null 2>&1; then {shell_python(c)} -c {shlex.quote(_PROBE)} '
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
    """An environment on the host that runs this edgecls build with ``formats``' backends.

    Raises:
        RemoteError: no usable interpreter and installing is not allowed or failed.
    """
    from edgecls.remote.install import install

    found = probe(transport, options.python, min(timeout_s, 120.0))
    host = transport.host.text
    if options.python:
        return _use_given(found, options.python, formats, host)
    for interpreter in found:
        if interpreter.same_build and not interpreter.missing_formats(formats):
            return Environment(shell_python(interpreter.python), interpreter, "reused")
    if options.install == "never":
        raise RemoteError(f"{host}: no Python there has this machine's edgecls build ({this_build()[:12]}) "
                          f"with {', '.join(sorted(formats))} support", _install_hint())
    venv = next((i for i in found if i.python == VENV_PYTHON), None)
    return install(transport, venv, found, formats, options, timeout_s)


def _use_given(found: list[Interpreter], python: str, formats: set[str], host: str) -> Environment:
    if not found:
        raise RemoteError(f"{host}: --remote-python {python} is not an interpreter there",
                          "give the path of a Python on the device, e.g. /usr/bin/python3")
    interpreter = found[0]
    if not interpreter.same_build:
        raise RemoteError(f"{host}: {python} has {interpreter.describe_edgecls()}, this machine runs "
                          f"edgecls {edgecls.__version__} (build {this_build()[:12]})",
                          "drop --remote-python to let edgecls install this build into ~/.edgecls/venv")
    missing = interpreter.missing_formats(formats)
    if missing:
        extras = ",".join(FORMAT_EXTRAS[f] for f in missing)
        raise RemoteError(f"{host}: {python} cannot run {', '.join(missing)} models (no inference library)",
                          f"there: {python} -m pip install {shlex.quote(_extra_packages(extras))}")
    return Environment(shell_python(python), interpreter, "reused")


def extras_for(formats: set[str]) -> str:
    """``runtime-onnx,runtime-tflite``: the pip extras that run ``formats``."""
    return ",".join(sorted(FORMAT_EXTRAS[f] for f in formats))


def _extra_packages(extras: str) -> str:
    """The inference libraries behind the extras, as a device's pip takes them."""
    from edgecls.remote.install import EXTRA_PACKAGES

    return " ".join(EXTRA_PACKAGES[e] for e in extras.split(","))


def installed_packages(pip_output: bytes) -> list[str]:
    """The ``name-version`` items of pip's "Successfully installed ..." line."""
    for line in pip_output.decode(errors="replace").splitlines():
        if line.startswith("Successfully installed "):
            return line.removeprefix("Successfully installed ").split()
    return []


def shell_python(python: str) -> str:
    """Shell text running ``python``: a bare command name as is, a path via ``shell_path``."""
    return shlex.quote(python) if "/" not in python else shell_path(python)


def _install_hint() -> str:
    return ("drop --install never to let edgecls install this build into ~/.edgecls/venv, or point "
            "--remote-python at a Python that runs it")
