"""Bundled profiles are found in a checkout and travel inside the wheel."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from edgecls.resources import resource_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["targets", "calibration"])
def test_checkout_resources_are_found(name):
    folder = resource_dir(name)
    assert folder == ROOT / name
    assert any(folder.glob("*.yaml"))


@pytest.mark.slow
def test_wheel_ships_profiles(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True)
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    assert any(n.endswith("share/edgecls/targets/raspberry-pi-4.yaml") for n in names)
    assert any(n.endswith("share/edgecls/calibration/default.yaml") for n in names)
