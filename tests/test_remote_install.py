"""A device gets this machine's edgecls build as a wheel built here, matched by build digest.

The "devices" are real OpenSSH servers on 127.0.0.1 (tests/sshd.py); skipped with the reason
when sshd or the ssh client is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.sshd import SshLab, free_port, missing_tools

import edgecls
from edgecls.build_info import package_digest, this_build
from edgecls.remote.device import PrepareOptions, prepare, probe
from edgecls.remote.host import parse_host
from edgecls.remote.local_wheel import local_wheel
from edgecls.remote.ssh import RemoteError, SshOptions, SshTransport

needs_sshd = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
PACKAGE = Path(edgecls.__file__).resolve().parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    lab = SshLab(tmp_path_factory.mktemp("ssh_install"))
    try:
        yield lab
    finally:
        lab.stop()


def _start(lab: SshLab, name: str, env: dict[str, str] | None = None) -> SshTransport:
    try:
        server = lab.start(name, env=env)
    except RuntimeError as exc:  # e.g. no privilege separation directory for a non-root user
        pytest.skip(f"sshd could not start here: {exc}")
    return SshTransport(parse_host(server.spec), SshOptions(config_file=lab.config, connect_timeout_s=5))


def test_the_device_wheel_is_this_build_and_pip_installs_it_offline(tmp_path: Path) -> None:
    wheel = local_wheel(cache=tmp_path / "cache")
    assert wheel.digest == this_build() and wheel.built_from.startswith("checkout ")
    assert wheel.path.name == f"edgecls-{edgecls.__version__}+b{this_build()[:12]}-py3-none-any.whl"
    assert local_wheel(cache=tmp_path / "cache").path == wheel.path  # cached by digest
    with zipfile.ZipFile(wheel.path) as archive:
        build = json.loads(archive.read("edgecls/_build.json"))
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    assert build["digest"] == this_build()
    assert 'Requires-Dist: onnxruntime>=1.17,<2; extra == "runtime-onnx"' in metadata
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                                "--disable-pip-version-check", "--target", str(target), str(wheel.path)],
                               capture_output=True, text=True, timeout=120, check=False)
    assert installed.returncode == 0, installed.stderr
    assert package_digest(str(target / "edgecls")) == this_build()  # what the device probe computes


@needs_sshd
def test_a_device_with_another_build_of_the_same_version_is_not_reused(lab: SshLab, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(PACKAGE, stale / "edgecls", ignore=shutil.ignore_patterns("__pycache__"))
    with (stale / "edgecls" / "cli" / "app.py").open("a") as handle:
        handle.write("# an older build\n")
    transport = _start(lab, "stale", env={"PYTHONPATH": str(stale)})
    try:
        found = probe(transport, sys.executable, 60)
        assert found[0].edgecls == edgecls.__version__ and found[0].build not in (None, this_build())
        with pytest.raises(RemoteError, match=r"has edgecls .* \(build [0-9a-f]{12}\), this machine runs") as caught:
            prepare(transport, {"onnx"}, PrepareOptions(python=sys.executable), 60)
        assert "drop --remote-python" in caught.value.hint
        with pytest.raises(RemoteError, match="no Python there has this machine's edgecls build"):
            prepare(transport, {"onnx"}, PrepareOptions(install="never"), 60)
    finally:
        transport.close()


@needs_sshd
@pytest.mark.slow  # creating a venv on the device takes a minute on a loaded machine
def test_an_offline_device_gets_the_wheel_and_falls_back_to_wheels_from_here(lab: SshLab, tmp_path: Path) -> None:
    offline = {"PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/simple/", "PIP_TIMEOUT": "3"}
    transport = _start(lab, "offline", env={"PYTHONPATH": str(tmp_path / "none"), **offline})
    try:
        python3 = probe(transport, "python3", 60)
        if not python3 or tuple(int(x) for x in python3[0].python_tag.split(".")) < (3, 10):
            pytest.skip("the device has no python3 >= 3.10 to create a venv with")
        wheels = tmp_path / "wheels"
        wheels.mkdir()
        (wheels / "not_a_dependency-1.0-py3-none-any.whl").write_bytes(b"PK\x05\x06" + bytes(18))  # empty zip
        with pytest.raises(RemoteError) as caught:  # the fallback finds no numpy among the copied wheels
            prepare(transport, {"onnx"}, PrepareOptions(wheelhouse=wheels), 600)
        assert f"installing edgecls-{edgecls.__version__}+b{this_build()[:12]}" in caught.value.message
        assert "No matching distribution found for" in caught.value.message
        home = lab.servers[-1].home
        assert (home / ".edgecls/wheels" / local_wheel().path.name).is_file()
        assert (home / ".edgecls/wheels/not_a_dependency-1.0-py3-none-any.whl").is_file()  # the fallback ran
    finally:
        transport.close()
