"""A cached virtualenv holding MediaPipe, the real client of standard TFLite Metadata.

``mediapipe`` depends on ``opencv-contrib-python``, which must not share an environment
with edgecls' ``opencv-python-headless`` (both install a ``cv2`` package). So the tests
run MediaPipe in its own virtualenv, built once from PyPI (about 75 s on a fresh
machine) under ``$EDGECLS_TEST_CACHE`` (default ``~/.cache/edgecls-test``) and reused.
Set ``EDGECLS_SKIP_MEDIAPIPE=1`` to skip these tests on a machine without PyPI.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MEDIAPIPE_VERSION = "1.2.3"
CLIENT_SCRIPT = Path(__file__).with_name("mediapipe_client.py")


def cache_root() -> Path:
    return Path(os.environ.get("EDGECLS_TEST_CACHE", Path.home() / ".cache" / "edgecls-test"))


def mediapipe_python() -> Path:
    """The interpreter of the MediaPipe virtualenv, built on first use."""
    if os.environ.get("EDGECLS_SKIP_MEDIAPIPE"):
        pytest.skip("EDGECLS_SKIP_MEDIAPIPE is set")
    venv = cache_root() / f"mediapipe-{MEDIAPIPE_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    python, done = venv / "bin" / "python", venv / ".complete"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes build it once
        if not done.is_file():
            _build(venv)
            done.write_text(MEDIAPIPE_VERSION)
    return python


def _build(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)  # a half-built one from an interrupted run
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              f"mediapipe=={MEDIAPIPE_VERSION}"]]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, timeout=1200, check=False)
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(f"building the MediaPipe test environment failed: {' '.join(step)}\n"
                        f"{result.stderr[-2000:]}")


def run_client(command: str, request: dict[str, Any]) -> dict[str, Any]:
    """Runs ``mediapipe_client.py COMMAND`` in the MediaPipe virtualenv; returns its JSON."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["GLOG_minloglevel"] = "2"
    result = subprocess.run([str(mediapipe_python()), str(CLIENT_SCRIPT), command],
                            input=json.dumps(request), capture_output=True, text=True,
                            timeout=600, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
