"""Where the YAML profiles shipped with edgecls live (``targets/``, ``calibration/``).

In a source checkout (or an editable install) they are the repository's top-level
folders; a wheel installs them as data files under ``<prefix>/share/edgecls/``.
Pure Python, no heavy imports: the runtime uses it on devices.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def resource_dir(name: str) -> Path:
    """The folder of bundled ``name`` files (e.g. ``"targets"``); the checkout's if present."""
    candidates = [_CHECKOUT / name]
    for prefix in {sys.prefix, sysconfig.get_paths()["data"]}:
        candidates.append(Path(prefix) / "share" / "edgecls" / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]
