"""Installing this machine's edgecls build into ``~/.edgecls/venv`` on a device.

edgecls itself always travels as a wheel built here (``local_wheel.py``): it may not be on
any package index, and the user's copy may be newer than any published one. The device's pip
installs ``edgecls-....whl[runtime-...]`` and fetches the dependencies from its own index;
when it cannot reach one (an offline device) the dependency wheels are downloaded here for
the device's platform and Python (``wheels.py``) and copied over. ``install="wheels"`` goes
that way directly. The environment's ``source`` says which way was taken.
"""

from __future__ import annotations

import subprocess

from edgecls.remote.device import (
    VENV,
    VENV_PYTHON,
    WHEELS_DIR,
    Environment,
    Interpreter,
    PrepareOptions,
    extras_for,
    installed_packages,
    probe,
    shell_python,
)
from edgecls.remote.local_wheel import LocalWheel, local_wheel
from edgecls.remote.ssh import RemoteError, SshTransport, last_line, shell_path
from edgecls.remote.sync import sync_files
from edgecls.remote.wheels import DevicePlatform, build_wheelhouse

EXTRA_PACKAGES = {"runtime-tflite": "ai-edge-litert", "runtime-onnx": "onnxruntime",
                  "runtime-openvino": "openvino"}
# What pip prints when it cannot reach an index at all (as opposed to finding no fitting version).
_OFFLINE_MARKERS = ("newconnectionerror", "failed to establish a new connection", "name resolution",
                    "network is unreachable", "connecttimeouterror", "connection refused",
                    "name or service not known", "proxyerror", "no route to host", "max retries exceeded")


def install(transport: SshTransport, venv: Interpreter | None, found: list[Interpreter], formats: set[str],
            options: PrepareOptions, timeout_s: float) -> Environment:
    """Creates ``~/.edgecls/venv`` if needed and installs this build with ``formats``' backends.

    Raises:
        RemoteError: no Python 3.10+ to make the venv with, or pip failed (its last line says why).
    """
    action = "updated" if venv else "created"
    base = venv or _create_venv(transport, found, timeout_s)
    wheel = local_wheel()
    sync_files(transport, {wheel.path.name: wheel.path}, WHEELS_DIR, timeout_s)
    extras = f"[{extras_for(formats)}]" if formats else ""
    built = f"edgecls wheel built here from the {wheel.built_from.split(' ')[0]}"
    if options.install == "wheels":
        proc = _install_from_wheels(transport, base, wheel, extras, options, timeout_s)
        source = f"{built}, dependencies from wheels downloaded here (--install wheels)"
    else:
        proc = _pip(transport, wheel, extras, "", options, timeout_s)
        source = f"{built}, dependencies from the device's package index"
        if proc.returncode != 0 and _offline(proc.stderr + proc.stdout):
            proc = _install_from_wheels(transport, base, wheel, extras, options, timeout_s)
            source = (f"{built}, dependencies from wheels downloaded here: the device's pip could not "
                      "reach a package index")
    if proc.returncode != 0:
        raise RemoteError(f"{transport.host.text}: installing {wheel.path.name}{extras} into ~/{VENV} failed: "
                          f"{last_line(proc.stderr)}", _hint(options))
    return _installed(transport, formats, action, installed_packages(proc.stdout), source)


def _create_venv(transport: SshTransport, found: list[Interpreter], timeout_s: float) -> Interpreter:
    host = transport.host.text
    base = next((i for i in found if i.python == "python3"), None)
    if base is None or tuple(int(x) for x in base.python_tag.split(".")) < (3, 10):
        raise RemoteError(f"{host}: no Python 3.10+ found to create {VENV} in",
                          "install python3 (3.10 or newer) and python3-venv on the device")
    made = transport.run(f"python3 -m venv {shell_path(VENV)}", min(timeout_s, 300.0), check=False)
    if made.returncode != 0:
        raise RemoteError(f"{host}: creating ~/{VENV} failed: {last_line(made.stdout + made.stderr)}",
                          "on Debian / Raspberry Pi OS: sudo apt install python3-venv")
    return base


def _install_from_wheels(transport: SshTransport, interpreter: Interpreter, wheel: LocalWheel, extras: str,
                         options: PrepareOptions, timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """Downloads (here) the dependency wheels for the device, copies them, installs offline."""
    platform = DevicePlatform(interpreter.machine, interpreter.python_tag, tuple(interpreter.libc))
    wheelhouse = options.wheelhouse or build_wheelhouse(platform, [f"{wheel.path}{extras}"])
    dependencies = {p.name: p for p in sorted(wheelhouse.glob("*.whl")) if not p.name.startswith("edgecls-")}
    sync_files(transport, dependencies, WHEELS_DIR, timeout_s)
    return _pip(transport, wheel, extras, f"--no-index --find-links {shell_path(WHEELS_DIR)}", options, timeout_s)


def _pip(transport: SshTransport, wheel: LocalWheel, extras: str, source_args: str, options: PrepareOptions,
         timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """pip install of the copied edgecls wheel (with ``extras``) into the venv."""
    target = shell_path(f"{WHEELS_DIR}/{wheel.path.name}{extras}")
    command = f"{shell_path(VENV_PYTHON)} -m pip install --disable-pip-version-check --retries 2 {source_args} {target}"
    return transport.run(command, min(timeout_s, options.timeout_s), check=False)


def _offline(pip_output: bytes) -> bool:
    text = pip_output.decode(errors="replace").lower()
    return any(marker in text for marker in _OFFLINE_MARKERS)


def _installed(transport: SshTransport, formats: set[str], action: str, packages: list[str],
               source: str) -> Environment:
    installed = probe(transport, VENV_PYTHON, 120.0)
    if not installed or not installed[0].same_build or installed[0].missing_formats(formats):
        have = installed[0].describe_edgecls() if installed else "no working Python"
        raise RemoteError(f"{transport.host.text}: ~/{VENV} still cannot run {', '.join(sorted(formats))} "
                          f"models with this build after installing ({have})")
    return Environment(shell_python(VENV_PYTHON), installed[0], action, packages, source)


def _hint(options: PrepareOptions) -> str:
    if options.install == "wheels":
        return "check that the device's platform has wheels for these packages, or use --install index"
    return ("check the device's network and pip configuration, or use --install wheels (this machine "
            "downloads the wheels for it)")

