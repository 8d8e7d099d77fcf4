"""`edgecls tune --host`: latency measured on a device over ssh, against a real OpenSSH server
on 127.0.0.1 (tests/helpers/sshd.py) whose ``python3`` runs this checkout, so nothing is
installed. The device's runtime versions are in the cache key, one bench runs at a time per
device, and a device whose bench fails ends the search with one line.
"""

from __future__ import annotations

import fcntl
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers.sshd import SshLab, SshServer, bench_intervals, missing_tools, start_python_device
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.errors import EdgeclsError
from edgecls.remote.host import parse_host
from edgecls.tune import steps
from edgecls.tune.latency_cache import BenchTarget, LatencyCache, LatencyMeter
from edgecls.tune.space import Signature

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))
ONNX = Signature("tiny_onnx", 16, format="onnx")


class Lab:
    def __init__(self, root: Path) -> None:
        self.ssh = SshLab(root / "ssh")
        self.site = root / "site"
        self.site.mkdir()
        self.device = start_python_device(self.ssh, "pi", self.site, sys.executable)
        self.broken = start_python_device(self.ssh, "broken", root / "no-site", sys.executable)
        (self.broken.home / ".edgecls").mkdir()
        (self.broken.home / ".edgecls" / "jobs").write_text("a file where the job folders go")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    try:
        lab = Lab(tmp_path_factory.mktemp("tune_remote"))
    except RuntimeError as exc:
        pytest.skip(f"sshd could not start here: {exc}")
    try:
        yield lab
    finally:
        lab.ssh.stop()


@pytest.fixture(autouse=True)
def ssh_config(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECLS_SSH_CONFIG", str(lab.ssh.config))


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    net = TinyNet()
    return make_onnx(tmp_path_factory.mktemp("onnx") / "tiny_int8.onnx", net,
                     tiny_metadata(net, precision="int8"), quantized=True)


def _meter(server: SshServer, cache: Path, model: Path) -> LatencyMeter:
    """A meter on ``server`` whose "export" is the tiny ONNX model (no TensorFlow needed)."""
    target = BenchTarget(host=parse_host(server.spec))

    def export(signature: Signature, classes: int, folder: Path) -> Path:
        return Path(shutil.copy(model, folder / model.name))

    def bench(artifact: Path, signature: Signature) -> dict:
        return steps.bench_on_host(artifact, target.host, signature.threads, None)

    return LatencyMeter(target, LatencyCache(cache), 3, cache.parent / "work", export, bench)


def test_a_bench_waits_while_another_holds_the_device(lab: Lab, onnx_model: Path) -> None:
    """The device's bench lock: a bench started while another runs there begins after it."""
    edgecls_home = lab.device.home / ".edgecls"
    edgecls_home.mkdir(exist_ok=True)
    host = parse_host(lab.device.spec)
    before = len(bench_intervals(lab.device))
    outcome: dict = {}

    def bench() -> None:
        try:
            outcome["record"] = steps.bench_on_host(onnx_model, host, None, None)
        except EdgeclsError as exc:
            outcome["error"] = exc

    with (edgecls_home / "bench.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # "another bench" on the device
        worker = threading.Thread(target=bench)
        worker.start()
        _wait_for_job_folder(edgecls_home / "jobs", worker)
        time.sleep(1.0)  # without the lock, the bench would have started by now
        released = time.time()
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(120)
    assert "error" not in outcome and outcome["record"]["status"] == "passed"
    started, _ = bench_intervals(lab.device)[before]
    assert started >= released


def _wait_for_job_folder(jobs: Path, worker: threading.Thread, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(jobs.glob("bench-*/models/*")) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
