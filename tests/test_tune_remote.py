"""`edgecls tune --host`: latency measured on a device over ssh, against a real OpenSSH server
on 127.0.0.1 (tests/helpers/sshd.py) whose ``python3`` runs this checkout, so nothing is
installed. The device's runtime versions are in the cache key, one bench runs at a time per
device, and a device whose bench fails ends the search with one line.
"""

from __future__ import annotations

import csv
import fcntl
import json
import platform
import shutil
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

import pytest
from helpers.sshd import SshLab, SshServer, bench_intervals, missing_tools, start_python_device
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.errors import EdgeclsError
from edgecls.remote.host import parse_host
from edgecls.tune import finalists, latency_cache, steps
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
        return steps.bench_on_host(artifact, target.host, signature.threads, None, runs=latency_cache.ROUND_RUNS)

    return LatencyMeter(target, LatencyCache(cache), 3, cache.parent / "work", export, bench)


def _upgrade(site: Path, package: str, version: str) -> None:
    """The device's ``package`` now reports ``version`` (a dist-info first on its path)."""
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")


def test_device_runtime_is_asked_once_per_process_and_keys_the_cache(lab: Lab, onnx_model: Path,
                                                                      tmp_path: Path) -> None:
    cache = tmp_path / "latency.json"
    first = _meter(lab.device, cache, onnx_model)
    measured = first.measure(ONNX)
    here = metadata.version("onnxruntime")  # the device runs this machine's Python
    assert measured.target == f"ssh:{lab.device.spec}" and measured.latency_ms() > 0
    assert measured.runtime.startswith(f"onnxruntime {here} on {platform.machine()} (")
    assert measured.machine["packages"]["onnxruntime"] == here and measured.machine["cpu_model"]
    assert first.measure(ONNX).runtime == measured.runtime and (first.measured, first.hits) == (1, 1)
    again = _meter(lab.device, cache, onnx_model)  # another process, same device runtime: cached
    assert again.measure(ONNX).measured == measured.measured and (again.measured, again.hits) == (0, 1)

    _upgrade(lab.site, "onnxruntime", "99.0")
    try:
        upgraded = _meter(lab.device, cache, onnx_model)
        remeasured = upgraded.measure(ONNX)
        assert remeasured.runtime.startswith("onnxruntime 99.0 on ") and upgraded.measured == 1
        assert remeasured.machine["packages"]["onnxruntime"] == "99.0"
    finally:
        shutil.rmtree(lab.site / "onnxruntime-99.0.dist-info")
    assert upgraded.measure(ONNX).runtime == remeasured.runtime  # asked once: this process keeps its answer
    entries = json.loads(cache.read_text())["entries"]
    assert {e["machine"]["packages"]["onnxruntime"] for e in entries.values()} == {"99.0", here}


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


def test_a_device_kept_busy_too_long_refuses_the_bench_with_the_reason(tmp_path: Path) -> None:
    """The device's shell, as the bench runs it, with another bench holding the lock past the wait."""
    import subprocess

    from edgecls.remote.bench import LOCK_BUSY, device_lock

    (tmp_path / ".edgecls").mkdir()
    with (tmp_path / ".edgecls" / "bench.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        shell = subprocess.run(["sh", "-c", device_lock(0) + "echo benched"], env={"HOME": str(tmp_path),
                               "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30, check=False)
    assert shell.returncode == LOCK_BUSY and "benched" not in shell.stdout
    assert shell.stderr.strip() == "another bench kept the device busy for 1 s"
    free = subprocess.run(["sh", "-c", device_lock(0) + "echo benched"], env={"HOME": str(tmp_path),
                          "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30, check=False)
    assert free.returncode == 0 and free.stdout.strip() == "benched"


def _wait_for_job_folder(jobs: Path, worker: threading.Thread, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(jobs.glob("bench-*/models/*")) and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_device_whose_bench_fails_fails_the_measurement_with_the_reason(lab: Lab, onnx_model: Path,
                                                                            tmp_path: Path) -> None:
    meter = _meter(lab.broken, tmp_path / "latency.json", onnx_model)
    with pytest.raises(EdgeclsError) as failed:
        meter.measure(ONNX)
    assert f"the bench on {lab.broken.spec} did not run" in str(failed.value)
    assert not (tmp_path / "latency.json").exists()  # nothing cached


def _tune(monkeypatch: pytest.MonkeyPatch, capsys, data: Path, out: Path, host: str, *extra: str) -> tuple[int, str]:
    pytest.importorskip("optuna")
    from helpers.cli import run_cli
    from helpers.runs import TINY

    return run_cli(monkeypatch, capsys, "tune", "--data", str(data), "--out", str(out), "--families", TINY,
                   "--sizes", "32", "--max-latency", "1000ms", "--host", host, *extra)


@pytest.mark.slow  # two untrained TFLite exports (~15 s); the failing bench itself is covered above
def test_search_stops_with_one_line_when_the_device_bench_keeps_failing(lab: Lab, monkeypatch, capsys,
                                                                        image_folder: Path, tmp_path: Path) -> None:
    """The device answers but cannot bench: each trial fails with the reason, then the search stops."""
    from edgecls.tune import tuner

    monkeypatch.setattr(tuner, "MAX_FAILURES_IN_A_ROW", 2)  # two untrained exports instead of five
    monkeypatch.setenv("EDGECLS_TUNE_CACHE", str(tmp_path / "latency.json"))
    code, output = _tune(monkeypatch, capsys, image_folder, tmp_path / "out", lab.broken.spec, "--trials", "3")
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in output
    assert errors[0].startswith("error: 2 trials in a row failed; the last: latency measurement failed: "
                                f"the bench on {lab.broken.spec} did not run")
    assert output.count(f"(latency measurement failed: the bench on {lab.broken.spec} did not run") == 2
    assert not list((tmp_path / "out").glob("trials/*/run")) and not (tmp_path / "out" / "best").exists()


@pytest.mark.slow  # a tiny search, its winner trained, exported and benched on the device: ~1 min
def test_tune_host_measures_on_the_device_end_to_end(lab: Lab, monkeypatch, capsys, image_folder: Path,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("EDGECLS_TUNE_CACHE", str(tmp_path / "latency.json"))
    before = len(bench_intervals(lab.device))
    out = tmp_path / "out"
    code, output = _tune(monkeypatch, capsys, image_folder, out, lab.device.spec, "--trials", "2",
                         "--final-epochs", "1")
    assert code == 0, output
    label = f"measured on {lab.device.spec}"
    assert output.count(label) >= 2 and "this machine" not in output  # the budget line and the winner's
    summary = json.loads((out / "summary.json").read_text())
    assert summary["figures"] == label and summary["winner"]["figures"] == label
    assert summary["latency_measured_here"] == 1 and summary["latency_cache_hits"] == 1
    assert (out / "best" / "export" / "manifest.json").is_file() and summary["winner"]["latency_ms"] > 0
    # the untrained signature's rounds, the finalists' side-by-side rounds with trained weights, the winner
    assert len(bench_intervals(lab.device)) - before == latency_cache.ROUNDS + finalists.ROUNDS + 1
    with (out / "trials.csv").open(newline="") as handle:
        assert any(row["trained_latency_ms"] for row in csv.DictReader(handle))  # re-benched on the device
    entry = next(iter(json.loads((tmp_path / "latency.json").read_text())["entries"].values()))
    assert entry["target"] == f"ssh:{lab.device.spec}" and entry["runtime"].startswith("ai-edge-litert ")


@pytest.mark.slow  # two edgecls processes benching over ssh at once: ~10 s on 2 loaded cores
def test_two_processes_benching_one_device_take_turns(lab: Lab, onnx_model: Path, tmp_path: Path) -> None:
    """As two tune workers of a cluster measuring through the same --host: no shared local lock."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "EDGECLS_SSH_CONFIG": str(lab.ssh.config)}
    before = len(bench_intervals(lab.device))
    workers = [subprocess.Popen([sys.executable, "-m", "edgecls", "bench", str(onnx_model), "--host", lab.device.spec,
                                 "--runs", "300", "--warmup", "5", "--json", str(tmp_path / f"{n}.json")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for n in range(2)]
    outputs = [w.communicate(timeout=240)[0].decode(errors="replace") for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    (first_start, first_end), (second_start, _) = bench_intervals(lab.device)[before:]
    assert second_start >= first_end
