"""Devices over ssh, against real OpenSSH servers on 127.0.0.1 (see tests/helpers/sshd.py).

The "device" is this machine: its sessions run this checkout with this test's Python
(``--remote-python``), so nothing is installed from the network. Skipped with the reason
when sshd or the ssh client is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.sshd import SshLab, free_port, missing_tools
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.errors import EdgeclsError
from helpers.cli import edgecls, run_cli
from helpers.images import write_color_folder
from edgecls.remote.device import PrepareOptions, prepare, probe
from edgecls.remote.host import parse_host
from edgecls.remote.ssh import (
    STATUS_FAILED,
    STATUS_UNREACHABLE,
    RemoteError,
    SshOptions,
    SshTransport,
)

REPO = Path(__file__).resolve().parents[1]
needs_sshd = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """Two trusted sshd "devices" and one whose host key nobody trusted."""
    lab = SshLab(tmp_path_factory.mktemp("ssh"))
    try:
        try:
            lab.start("pi")
            lab.start("jetson")
            lab.start("stranger", trusted=False)
        except RuntimeError as exc:  # e.g. no privilege separation directory for a non-root user
            pytest.skip(f"sshd could not start here: {exc}")
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("remote_models")
    net = TinyNet()
    return [make_onnx(root / "tiny_fp32.onnx", net, tiny_metadata(net, extra={"run": "r"})),
            make_onnx(root / "tiny_int8.onnx", net, tiny_metadata(net, precision="int8", extra={"run": "r"}),
                      quantized=True)]


@pytest.fixture
def connect(lab: SshLab):
    """Makes transports to the lab's hosts and closes their shared connections afterwards."""
    made: list[SshTransport] = []

    def make(spec: str) -> SshTransport:
        made.append(SshTransport(parse_host(spec), SshOptions(config_file=lab.config, connect_timeout_s=5)))
        return made[-1]

    yield make
    for transport in made:
        transport.close()


def cli(*args: str, lab: SshLab, fresh: bool = True, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python -m edgecls ARGS`` against the lab; ``fresh=False`` runs it in this process
    (each command keeps one call in a fresh process)."""
    env = {"EDGECLS_SSH_CONFIG": str(lab.config), "COLUMNS": "160"}
    if not fresh:
        return edgecls(*args, env=env)
    return subprocess.run([sys.executable, "-m", "edgecls", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env}, timeout=timeout, check=False)


@needs_sshd
def test_unknown_host_key_is_refused_with_the_command_to_trust_it(lab: SshLab, connect) -> None:
    stranger = lab.servers[2]
    with pytest.raises(RemoteError) as caught:
        connect(stranger.spec).connect(30)
    assert caught.value.status == STATUS_FAILED
    assert "unknown host key" in caught.value.message
    assert f"ssh-keyscan -p {stranger.port} 127.0.0.1 >> ~/.ssh/known_hosts" in caught.value.hint


@needs_sshd
def test_closed_port_is_unreachable(connect) -> None:
    with pytest.raises(RemoteError) as caught:
        connect(f"127.0.0.1:{free_port()}").connect(30)
    assert caught.value.status == STATUS_UNREACHABLE and "Connection refused" in caught.value.message


@needs_sshd
def test_alias_files_and_probe(lab: SshLab, connect, tmp_path: Path) -> None:
    transport = connect("device-0")  # an alias of the lab's ssh config
    (tmp_path / "a b.txt").write_text("hello")
    transport.put({"x/a b.txt": tmp_path / "a b.txt"}, "copied", 30)
    assert transport.read("copied/x/a b.txt", 30) == b"hello"
    found = probe(transport, sys.executable, 60)
    assert found and found[0].home == str(lab.servers[0].home) and found[0].modules["onnxruntime"]


@needs_sshd
def test_prepare_reuses_a_compatible_env_and_refuses_what_it_may_not_install(lab: SshLab, connect) -> None:
    transport = connect(lab.servers[0].spec)
    env = prepare(transport, {"onnx"}, PrepareOptions(python=sys.executable), 60)
    assert env.action == "reused" and env.installed == []
    with pytest.raises(RemoteError, match="not an interpreter"):
        prepare(transport, {"onnx"}, PrepareOptions(python="/nonexistent/python3"), 60)
    # The device's python3 sees edgecls (PYTHONPATH) but no ONNX Runtime; installing is not allowed.
    python3 = probe(transport, "python3", 60)
    if python3 and not python3[0].modules.get("onnxruntime"):
        with pytest.raises(RemoteError, match="no Python there has this machine's edgecls build"):
            prepare(transport, {"onnx"}, PrepareOptions(install="never"), 60)


@needs_sshd
def test_bench_on_two_hosts_in_parallel_with_one_unreachable(lab: SshLab, onnx_models: list[Path],
                                                             tmp_path: Path) -> None:
    colors = write_color_folder(tmp_path / "colors", per_class=4)
    out = tmp_path / "merged.json"
    closed, stranger = f"127.0.0.1:{free_port()}", lab.servers[2].spec
    proc = cli("bench", *map(str, onnx_models), "--data", str(colors), "--max-per-class", "3",
               "--reference", str(onnx_models[0]), "--host", lab.servers[0].spec, "--host", "device-1",
               "--host", closed, "--host", stranger, "--remote-python", sys.executable, "--runs", "5",
               "--warmup", "1", "--threads", "1", "--target", "x86-cpu", "--json", str(out), lab=lab)
    assert proc.returncode == 1, proc.stderr  # one host was unreachable, one refused
    report = json.loads(out.read_text())
    statuses = {h["host"]: h["status"] for h in report["hosts"]}
    assert statuses == {lab.servers[0].spec: "passed", "device-1": "passed", closed: STATUS_UNREACHABLE,
                        stranger: STATUS_FAILED}
    refused = next(h for h in report["hosts"] if h["host"] == stranger)
    assert "unknown host key" in refused["reason"] and "ssh-keyscan" in refused["hint"]
    assert "ssh-keyscan" in proc.stdout  # the hint is printed too
    assert all(h["environment"]["action"] == "reused" for h in report["hosts"] if h["status"] == "passed")
    records = report["records"]
    assert sorted((r["host"], r["file"]) for r in records) == sorted(
        (host, m.name) for host in (lab.servers[0].spec, "device-1") for m in onnx_models)
    for record in records:
        assert record["status"] == "passed", record["reason"]
        assert record["model"] in {str(m) for m in onnx_models}
        assert record["threads"] == 1 and record["target"] == "x86-cpu" and record["latency"]["runs"] == 5
        assert record["accuracy"]["images"] == 9 and record["accuracy"]["top1"] == 1.0
        assert record["accuracy"]["reference"] == {**record["accuracy"]["reference"], "model": str(onnx_models[0]),
                                                   "agreement": 1.0}
        assert record["machine"]["python"]
    shown = cli("report", str(out), "--md", str(tmp_path / "r.md"), "--html", str(tmp_path / "r.html"), lab=lab,
                fresh=False)
    assert shown.returncode == 0, shown.stderr
    assert f"{lab.servers[0].spec} · x86-cpu" in shown.stdout and "device-1 · x86-cpu" in shown.stdout
    assert f"{closed}: unreachable" in shown.stdout
    markdown = (tmp_path / "r.md").read_text()
    assert "**Hosts**" in markdown and "Connection refused" in markdown
    assert markdown.count("| tiny_int8.onnx |") == 2
    assert "<h2>Hosts</h2>" in (tmp_path / "r.html").read_text()


def write_video(path: Path, frames: int, bgr: tuple[int, int, int] = (0, 0, 255)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (32, 32))
    frame = np.full((32, 32, 3), bgr, np.uint8)
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return path


@needs_sshd
def test_run_streams_json_lines_back_and_sends_the_model_once(lab: SshLab, onnx_models: list[Path],
                                                             tmp_path: Path) -> None:
    colors = write_color_folder(tmp_path / "colors", per_class=2)
    args = ("run", str(onnx_models[0]), "--remote", "device-0", "--remote-python", sys.executable,
            "--source", str(colors / "red"), "--top-k", "2")
    first = cli(*args, lab=lab)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stdout.splitlines()]
    assert len(lines) == 2 and all(line["label"] == "red" and len(line["topk"]) == 2 for line in lines)
    assert "copied tiny_fp32.onnx" in first.stderr and "2 frames" in first.stderr
    again = cli("run", str(onnx_models[0]), "--remote", "device-0", "--remote-python", sys.executable,
                "--source", str(tmp_path / "nowhere"), lab=lab, fresh=False)
    assert "model unchanged" in again.stderr
    assert again.returncode == 2 and "nowhere" in again.stderr  # the device's own error, exit code kept


@needs_sshd
def test_run_live_on_a_device_returns_the_summary_the_device_printed(lab: SshLab, onnx_models: list[Path],
                                                                     tmp_path: Path, monkeypatch, capsys) -> None:
    import edgecls

    monkeypatch.setenv("EDGECLS_SSH_CONFIG", str(lab.config))
    colors = write_color_folder(tmp_path / "colors", per_class=3)
    summary = edgecls.run_live(onnx_models[0], source=str(colors / "blue"), top_k=1, remote="device-0",
                               remote_python=sys.executable)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert summary.frames == len(lines) == 3 and {line["label"] for line in lines} == {"blue"}
    assert summary.host == "device-0" and summary.exit_code == 0 and summary.backend == "onnxruntime"
    assert "live run on device-0: done" in summary._repr_html_()


@needs_sshd
def test_run_serve_is_forwarded_and_ends_with_the_connection(lab: SshLab, onnx_models: list[Path],
                                                             tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.avi", 8000)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDGECLS_SSH_CONFIG": str(lab.config)}
    process = subprocess.Popen(
        [sys.executable, "-m", "edgecls", "run", str(onnx_models[1]), "--remote", lab.servers[1].spec,
         "--remote-python", sys.executable, "--source", str(video), "--serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert json.loads(process.stdout.readline())["label"] == "red"
        assert b"stream" in _fetch(f"http://127.0.0.1:{port}/")  # the device's page, through the forward
    finally:
        process.terminate()
        process.wait(timeout=30)
    marker = f"{lab.servers[1].home}/.edgecls/run/{onnx_models[1].name}"
    deadline = time.monotonic() + 20
    while _running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(marker), "the device's run outlived the ssh connection"


def _fetch(url: str, timeout_s: float = 20.0) -> bytes:
    """GET ``url``, retrying while the forward comes up."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as page:
                return page.read(4096)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _running(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode == 0


@needs_sshd
def test_deploy_prints_a_valid_unit_then_installs_it_idempotently(lab: SshLab, onnx_models: list[Path],
                                                                  tmp_path: Path) -> None:
    device = lab.servers[0]
    model = tmp_path / "classifier.onnx"
    model.write_bytes(onnx_models[0].read_bytes())
    common = ("deploy", str(model), "--host", device.spec, "--remote-python", sys.executable,
              "--target", "raspberry-pi-5", "--source", "/dev/video0")
    printed = cli(*common, lab=lab)
    assert printed.returncode == 0, printed.stderr
    assert "model: copied classifier.onnx" in printed.stdout and "reused" in printed.stdout
    unit = printed.stdout.split("edgecls-classifier.service\n", 1)[1].split("to install it", 1)[0].strip() + "\n"
    model_on_device = f"{device.home}/.edgecls/deploy/edgecls-classifier/classifier.onnx"
    assert f"ExecStart={sys.executable} -m edgecls run {model_on_device} --headless --source /dev/video0 " \
           "--target raspberry-pi-5" in unit
    if shutil.which("systemd-analyze"):
        (tmp_path / "edgecls-classifier.service").write_text(unit)
        verify = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "edgecls-classifier.service")],
                                capture_output=True, text=True, check=False)
        assert verify.returncode == 0 and "edgecls-classifier" not in verify.stderr, verify.stderr

    image = tmp_path / "image"  # a root the unit is installed under (systemd does not run here)
    service = (*common, "--service", "--root", str(image))
    first = cli(*service, lab=lab)
    assert first.returncode == 0, first.stderr
    assert "model: unchanged" in first.stdout and "enabled at boot" in first.stdout
    installed = image / "etc/systemd/system/edgecls-classifier.service"
    assert installed.read_text() == unit
    assert (image / "etc/systemd/system/multi-user.target.wants/edgecls-classifier.service").is_symlink()
    second = cli(*service, lab=lab, fresh=False)
    assert second.returncode == 0 and "up to date, nothing changed" in second.stdout, second.stdout
    model.write_bytes(onnx_models[1].read_bytes())  # a new version of the model
    third = cli(*service, lab=lab, fresh=False)
    assert "model: copied classifier.onnx" in third.stdout and "wrote" not in third.stdout
    assert Path(model_on_device).read_bytes() == onnx_models[1].read_bytes()


@needs_sshd
def test_deploy_through_the_api_returns_what_it_did_and_raises_the_cli_errors(
        lab: SshLab, onnx_models: list[Path], tmp_path: Path, monkeypatch, capsys) -> None:
    import edgecls

    monkeypatch.setenv("EDGECLS_SSH_CONFIG", str(lab.config))
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws as on a terminal
    device, model = lab.servers[0], tmp_path / "api.onnx"
    model.write_bytes(onnx_models[0].read_bytes())
    deployment = edgecls.deploy(model, host=device.spec, remote_python=sys.executable, progress=False)
    assert capsys.readouterr() == ("", "")  # no spinner
    assert deployment.status == "passed" and deployment.result.copied == ["api.onnx"]
    assert f"{device.home}/.edgecls/deploy/edgecls-api/api.onnx --headless" in deployment.unit
    assert deployment.install_commands and deployment.to_dict()["changed"]
    html = deployment._repr_html_()
    assert f"deploy on {device.spec}: passed" in html and "<pre>" in html and "[Unit]" in html
    monkeypatch.delenv("TTY_COMPATIBLE")
    closed = f"127.0.0.1:{free_port()}"
    for options in ({"host": device.spec, "install": "sometimes"}, {"host": closed}):
        with pytest.raises(EdgeclsError) as raised:
            edgecls.deploy(model, remote_python=sys.executable, progress=False, **options)
        flags = [arg for name, value in options.items() for arg in (f"--{name}", value)]
        code, output = run_cli(monkeypatch, capsys, "deploy", str(model), "--remote-python", sys.executable, *flags)
        assert code == 2 and f"error: {raised.value.message}" in output, output


def _path_without(tool: str, folder: Path) -> str:
    """A PATH folder with every command of this machine's PATH except ``tool``."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for entry in Path(directory).glob("*") if Path(directory).is_dir() else []:
            if entry.name != tool and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return str(folder)


@needs_sshd
def test_deploy_service_on_a_device_without_systemctl_says_so_before_copying(
        lab: SshLab, onnx_models: list[Path], tmp_path: Path) -> None:
    device = lab.start("no-systemd", env={"PATH": _path_without("systemctl", tmp_path / "bin")})
    refused = cli("deploy", str(onnx_models[0]), "--host", device.spec, "--remote-python", sys.executable,
                  "--service", lab=lab)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "systemctl is not installed there" in refused.stderr and "without --service" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (device.home / ".edgecls/deploy").exists()  # refused before the model was copied


@needs_sshd
@pytest.mark.slow  # creating a venv on the device takes a minute on a loaded machine
def test_offline_install_creates_the_venv_and_uses_only_the_copied_wheels(lab: SshLab, connect,
                                                                          tmp_path: Path) -> None:
    transport = connect(lab.servers[1].spec)
    python3 = probe(transport, "python3", 60)
    if not python3 or tuple(int(x) for x in python3[0].python_tag.split(".")) < (3, 10):
        pytest.skip("the device has no python3 >= 3.10 to create a venv with")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "not_a_dependency-1.0-py3-none-any.whl").write_bytes(b"PK\x05\x06" + bytes(18))  # empty zip
    with pytest.raises(RemoteError) as caught:  # nothing from the index: edgecls is not in the wheelhouse
        prepare(transport, {"onnx"}, PrepareOptions(install="wheels", wheelhouse=wheels), 600)
    assert "installing edgecls-0.1.0+b" in caught.value.message  # this machine's build, shipped as a wheel
    assert "No matching distribution found for" in caught.value.message
    assert "found for edgecls" not in caught.value.message
    home = lab.servers[1].home
    assert (home / ".edgecls/venv/bin/python").exists()
    assert (home / ".edgecls/wheels/not_a_dependency-1.0-py3-none-any.whl").is_file()


@needs_sshd
def test_deploy_refuses_a_worse_model_and_records_which_replaced_which(lab: SshLab, onnx_models: list[Path],
                                                                     tmp_path: Path) -> None:
    from edgecls.digest import file_sha256

    device = lab.servers[1]
    old, new = onnx_models
    common = ("--host", device.spec, "--remote-python", sys.executable, "--name", "edgecls-judged")
    first = cli("deploy", str(old), *common, lab=lab, fresh=False)
    assert first.returncode == 0, first.stderr
    record_path = device.home / ".edgecls/deploy/edgecls-judged/deployed.json"
    record = json.loads(record_path.read_text())
    assert record["sha256"] == file_sha256(old) and record["replaced"] is None
    report = tmp_path / "comparison.json"  # what `edgecls compare NEW OLD --json` saved
    report.write_text(json.dumps({
        "schema_version": 1, "verdict": "worse",
        "new": {"kind": "artifact", "sha256": file_sha256(new), "run": None},
        "old": {"kind": "artifact", "sha256": file_sha256(old), "run": None},
        "overall": {"difference_pp": -6.0, "interval_pp": [-9.1, -2.8], "images": 300}}))
    refused = cli("deploy", str(new), *common, "--comparison", str(report), lab=lab, fresh=False)
    assert refused.returncode == 2 and "refused: tiny_int8.onnx is worse" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and "--force" in refused.stderr
    assert json.loads(record_path.read_text()) == record  # nothing changed on the device
    forced = cli("deploy", str(new), *common, "--comparison", str(report), "--force", lab=lab, fresh=False)
    assert forced.returncode == 0, forced.stderr
    assert "replaces tiny_fp32.onnx (forced): worse" in forced.stdout
    replaced = json.loads(record_path.read_text())
    assert replaced["sha256"] == file_sha256(new) and replaced["replaced"]["sha256"] == record["sha256"]
    assert replaced["comparison"]["verdict"] == "worse" and replaced["comparison"]["forced"]
