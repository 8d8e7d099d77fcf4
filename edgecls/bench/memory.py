"""Resident memory of the current process, for the per-model measurement subprocess.

Bench measures each model in a fresh subprocess (see ``runner``), so the process peak
RSS belongs to that model alone: nothing another model allocated can inflate it, and
freed memory cannot hide a peak the way sampling the current RSS can.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_MB = 2**20


def peak_rss_mb() -> float | None:
    """Highest resident set size this process has reached, in MiB (None if unknown)."""
    try:
        import resource
    except ImportError:  # Windows
        return _psutil_peak_mb()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(peak / _MB if sys.platform == "darwin" else peak / 1024, 2)


def current_rss_mb() -> float | None:
    """Resident set size of this process now, in MiB (None if unknown)."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        pages = int(statm.read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / _MB, 2)
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.Process().memory_info().rss / _MB, 2)


def _psutil_peak_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)
    return round(peak / _MB, 2) if peak is not None else None
