"""Which build of edgecls this is: a digest of the package's files.

``__version__`` is the same for every build of a release, so a device whose edgecls is
older than this machine's would pass a version check. The digest tells builds apart; the
device probe (``remote.device``) runs ``package_digest`` there, so the function is
self-contained (standard library only, imports inside). A wheel made by
``remote.local_wheel`` also carries it in ``edgecls/_build.json``, with where it was built.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

BUILD_FILE = "_build.json"


def package_digest(package_dir: str) -> str:
    """sha256 (32 hex digits) over the relative path and bytes of every file of the package
    (``__pycache__``, compiled files and ``_build.json`` left out), in sorted path order."""
    import hashlib
    import os

    names = []
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        names += [os.path.relpath(os.path.join(folder, name), package_dir).replace(os.sep, "/")
                  for name in files if not name.endswith((".pyc", ".pyo")) and name != "_build.json"]
    digest = hashlib.sha256()
    for name in sorted(names):
        with open(os.path.join(package_dir, name), "rb") as handle:
            digest.update(name.encode() + b"\0" + hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:32]


@functools.lru_cache(maxsize=1)
def this_build() -> str:
    """``package_digest`` of the edgecls package this process imported."""
    return package_digest(str(Path(__file__).resolve().parent))


def recorded_build(package_dir: str | Path) -> dict | None:
    """The ``_build.json`` a locally built wheel installed (digest, version, built_from), or None."""
    try:
        data = json.loads((Path(package_dir) / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
