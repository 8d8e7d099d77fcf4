"""Wheels for a device without internet, downloaded on this machine for the device's platform.

``pip download --only-binary=:all: --platform manylinux_2_N_<arch>... --python-version X.Y``
fetches the wheels the device's pip would pick (pip does not widen a ``manylinux_2_N`` tag to
the older ones a device also accepts, so every tag from the device's glibc down to 2.17 is
given); the requirement is this machine's own edgecls wheel (``local_wheel.py``) with its
extras, so pip resolves its dependencies. The folder is cached per platform and Python under
``$EDGECLS_CACHE/wheels`` and copied to the device, where ``pip install --no-index
--find-links`` installs from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from edgecls.errors import EdgeclsError

_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class DevicePlatform:
    """What decides which wheels fit a device."""

    machine: str  # aarch64, x86_64, armv7l
    python: str  # "3.11"
    libc: tuple[str, ...]  # ("glibc", "2.36")

    @property
    def platform_tags(self) -> list[str]:
        """Every manylinux tag the device accepts, newest first (``manylinux2014`` = 2.17)."""
        name, version = (self.libc + ("", ""))[:2]
        if name != "glibc" or not version:
            raise EdgeclsError(f"cannot pick wheels for a device with libc {name or 'unknown'!r}",
                               "install from the index on the device (--install index) instead")
        minor = int(version.split(".")[1])
        return [f"manylinux_2_{n}_{self.machine}" for n in range(minor, 16, -1)] + [f"manylinux2014_{self.machine}"]

    @property
    def key(self) -> str:
        return f"{self.platform_tags[0]}-py{self.python}"


def download_command(platform: DevicePlatform, requirements: list[str], dest: Path,
                     find_links: Path | None = None) -> list[str]:
    """The ``pip download`` argv that fetches binary wheels for ``platform`` into ``dest``."""
    python = platform.python.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(dest),
               "--only-binary=:all:"]
    for tag in platform.platform_tags:
        command += ["--platform", tag]
    command += ["--python-version", platform.python, "--implementation", "cp", "--abi", f"cp{python}"]
    if find_links is not None:
        command += ["--find-links", str(find_links)]
    return command + requirements


def build_wheelhouse(platform: DevicePlatform, requirements: list[str], cache: Path | None = None) -> Path:
    """Downloads (once per platform and Python) the wheels ``requirements`` need there.

    Raises:
        EdgeclsError: pip could not find a wheel for the device (its message says which).
    """
    root = cache or Path(os.environ.get("EDGECLS_CACHE", "~/.cache/edgecls")).expanduser()
    dest = root / "wheels" / platform.key
    with _lock_for(dest):
        dest.mkdir(parents=True, exist_ok=True)
        _pip(download_command(platform, requirements, dest, find_links=dest),
             f"downloading wheels for {platform.key}")
    return dest


def _pip(command: list[str], what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise EdgeclsError(f"{what} failed: {lines[-1] if lines else 'pip exited ' + str(proc.returncode)}",
                           "check the device's Python and platform, or use --install index")


def _lock_for(path: Path) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(path, threading.Lock())
