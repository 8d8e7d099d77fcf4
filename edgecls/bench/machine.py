"""The machine a bench ran on: CPU model, cores, OS, Python and load, without TensorFlow."""

from __future__ import annotations

import os
import platform
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from edgecls.formats import FORMATS

# Inference libraries whose versions a report records when installed.
BACKEND_DISTRIBUTIONS = tuple(name for fmt in FORMATS for name in fmt.runtime_distributions)


def describe_machine(target: str | None = None) -> dict[str, Any]:
    """A JSON-ready description of this machine (see SCHEMA.md, ``machine``)."""
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cores_logical": os.cpu_count() or 1,
        "cores_physical": _physical_cores(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_mb": _memory_total_mb(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "device_model": _device_model(),
        "target": target,
        "load_avg_1m": _load_average(),
        "packages": installed_backend_versions(),
    }


def machine_key(machine: dict[str, Any]) -> str:
    """A short human label that tells machines apart in a merged report."""
    name = machine.get("target") or machine.get("device_model") or machine.get("cpu_model") or "?"
    host = machine.get("hostname")
    return f"{name} @ {host}" if host else str(name)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux) or the platform module."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("model name", "hardware", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def installed_backend_versions() -> dict[str, str]:
    """Versions of the installed inference packages (name -> version)."""
    versions = {}
    for name in BACKEND_DISTRIBUTIONS:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _device_model() -> str | None:
    """Board name on ARM devices (e.g. "Raspberry Pi 4 Model B Rev 1.4"), else None."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        try:
            return Path(path).read_text(errors="replace").strip("\x00\n ") or None
        except OSError:
            continue
    return None


def _physical_cores() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


def _memory_total_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.virtual_memory().total / 2**20, 1)


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None

