"""Devices over ssh, what is decided before any device is contacted: host specs, the
wheels and sample sent, bench options spelled for the device, the systemd unit and the
install steps (no ssh server needed; tests/test_remote.py talks to real ones)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edgecls.bench.dataset import LabelledImages
from edgecls.bench.runner import BenchOptions
from edgecls.errors import ConfigError, EdgeclsError
from edgecls.remote.bench import RemoteBenchJob, bench_arguments
from edgecls.remote.deploy import DeployJob, UnitState, install_steps, systemd_quote, unit_text
from helpers.cli import run_cli
from edgecls.remote.device import Environment, Interpreter, extras_for
from edgecls.remote.host import parse_host, parse_hosts
from edgecls.remote.sample import sample_images
from edgecls.remote.wheels import DevicePlatform, download_command


def test_host_specs() -> None:
    assert parse_host("pi@pi5.local") == parse_host("pi@pi5.local:22").__class__("pi@pi5.local", "pi5.local", "pi")
    spec = parse_host("pi@10.0.0.7:2222")
    assert (spec.user, spec.host, spec.port, spec.destination) == ("pi", "10.0.0.7", 2222, "pi@10.0.0.7")
    assert parse_host("jetson").destination == "jetson" and parse_host("jetson").port is None
    assert parse_host("[::1]:2200").host == "::1"
    for bad in ("-oProxyCommand=x", "pi@host name", "pi@host:99999", "pi@", "a;b", ""):
        with pytest.raises(ConfigError):
            parse_host(bad)
    with pytest.raises(ConfigError, match="twice"):
        parse_hosts(["pi@a", "pi@a"])


def test_wheel_download_command_for_the_device_platform(tmp_path: Path) -> None:
    platform = DevicePlatform("aarch64", "3.11", ("glibc", "2.36"))
    command = download_command(platform, [f"/w/edgecls-0.1.0+b1-py3-none-any.whl[{extras_for({'tflite'})}]"], tmp_path)
    text = " ".join(command)
    assert "--only-binary=:all: --platform manylinux_2_36_aarch64 --platform manylinux_2_35_aarch64" in text
    assert "--platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 --python-version 3.11" in text
    assert "--abi cp311" in text and command[-1].endswith(".whl[runtime-tflite]")
    with pytest.raises(EdgeclsError, match="libc"):
        _ = DevicePlatform("aarch64", "3.11", ("musl", "1.2")).platform_tags


def test_sample_is_fixed_class_balanced_and_laid_out_per_class(tmp_path: Path) -> None:
    files = {label: [tmp_path / f"{label}_{i:02d}.PNG" for i in range(count)]
             for label, count in (("cat", 10), ("dog", 2), ("owl", 5))}
    items = [(path, index) for index, paths in enumerate(files.values()) for path in reversed(paths)]
    images = LabelledImages("x", list(files), items)
    sample = sample_images(images, per_class=3)
    assert sample == sample_images(images, per_class=3)  # fixed: no randomness
    assert [name for name in sample if name.startswith("data/cat/")] == [f"data/cat/000{i}.png" for i in range(3)]
    assert [sample[f"data/cat/000{i}.png"].name for i in range(3)] == ["cat_00.PNG", "cat_03.PNG", "cat_06.PNG"]
    assert sum(name.startswith("data/dog/") for name in sample) == 2
    assert sum(name.startswith("data/owl/") for name in sample) == 3


def test_bench_options_are_spelled_for_the_device(tmp_path: Path) -> None:
    options = BenchOptions(data=tmp_path, reference=Path("ref/fp32.onnx"), target="raspberry-pi-5",
                           threads=[1, 4], seconds=2.5, warmup=3, min_accuracy=0.9, verify=False,
                           providers=["cpu"], labels_file=Path("labels.txt"))
    args = bench_arguments(RemoteBenchJob([Path("out/m_int8.tflite"), Path("m.xml")], options, []))
    assert args[:3] == ["bench", "models/m_int8.tflite", "models/m.xml"]
    text = " ".join(args)
    for part in ("--seconds 2.5", "--warmup 3", "--data data", "--reference reference/fp32.onnx",
                 "--labels labels.txt", "--target raspberry-pi-5", "--threads 1,4", "--min-accuracy 0.9",
                 "--providers cpu", "--no-verify", "--json result.json"):
        assert part in text
    assert "--runs" not in args


@pytest.mark.parametrize(("bad", "message"), [
    (("--threads", "0"), "thread counts must be at least 1"),
    (("--threads", "2,two"), "is not a list of integers"),
    (("--runs", "0"), "--runs must be at least 1"),
    (("--warmup", "-1"), "--warmup cannot be negative"),
    (("--min-accuracy", "0.9"), "--min-accuracy needs labelled data"),
    (("--target", "no-such-board"), "unknown target 'no-such-board'"),
    (("--install", "sometimes"), "--install 'sometimes' is not one of"),
])
def test_bad_bench_options_are_refused_before_any_device_is_contacted(
        monkeypatch, capsys, tmp_path: Path, bad: tuple[str, str], message: str) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not looked at: the options are wrong")
    with socket.socket() as device:  # a "device" that records any connection attempt
        device.bind(("127.0.0.1", 0))
        device.listen(8)
        device.setblocking(False)
        code, output = run_cli(monkeypatch, capsys, "bench", str(model), "--host",
                               f"127.0.0.1:{device.getsockname()[1]}", "--json", str(tmp_path / "out.json"), *bad)
        with pytest.raises(BlockingIOError):
            device.accept()
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert not (tmp_path / "out.json").exists()


def test_systemd_exec_words_are_quoted() -> None:
    assert systemd_quote("/usr/bin/python3") == "/usr/bin/python3"
    assert systemd_quote("/home/pi/my models/a.tflite") == '"/home/pi/my models/a.tflite"'
    assert systemd_quote("rtsp://cam/$x%20") == "rtsp://cam/$$x%%20"
    assert systemd_quote('say "hi"') == '"say \\"hi\\""'


def _pi_environment(uid: int = 1000) -> Environment:
    interpreter = Interpreter(python="/home/pi/.edgecls/venv/bin/python", version="3.11.2", machine="aarch64",
                              libc=["glibc", "2.36"], home="/home/pi", edgecls="1.0", modules={},
                              executable="/home/pi/.edgecls/venv/bin/python", user="pi", uid=uid,
                              systemd=True, systemctl=True)
    return Environment(interpreter.python, interpreter, "reused")


def test_unit_runs_the_model_headless_as_the_device_user() -> None:
    job = DeployJob(Path("my models/cls int8.tflite"), parse_host("pi@pi5"), target="raspberry-pi-5",
                    source="rtsp://cam/live?x=$a%b")
    unit = unit_text(job, _pi_environment())
    assert job.unit_name == "edgecls-cls-int8.service"
    assert "\nUser=pi\nWorkingDirectory=/home/pi\n" in unit and "Restart=always" in unit
    assert "WantedBy=multi-user.target" in unit and "After=network-online.target" in unit
    assert ('ExecStart=/home/pi/.edgecls/venv/bin/python -m edgecls run '
            '"/home/pi/.edgecls/deploy/edgecls-cls-int8/cls int8.tflite" --headless '
            '--source rtsp://cam/live?x=$$a%%b --target raspberry-pi-5\n') in unit


def test_install_steps_do_only_what_the_device_lacks() -> None:
    job = DeployJob(Path("m.onnx"), parse_host("pi@pi5"), service=True)
    unit = "[Unit]\n"
    fresh = UnitState(current="", enabled=False, active=False)
    steps = install_steps(job, as_root=False, systemd_running=True, unit=unit, state=fresh, restart=False)
    assert [s.command for s in steps] == [
        "sudo -n mkdir -p /etc/systemd/system && sudo -n tee /etc/systemd/system/.edgecls-m.service.tmp "
        ">/dev/null && sudo -n mv -f /etc/systemd/system/.edgecls-m.service.tmp /etc/systemd/system/edgecls-m.service",
        "sudo -n systemctl daemon-reload", "sudo -n systemctl enable edgecls-m.service",
        "sudo -n systemctl restart edgecls-m.service"]
    assert steps[0].stdin == unit.encode()
    assert [s.says for s in steps] == ["wrote /etc/systemd/system/edgecls-m.service", None, "enabled at boot",
                                       "started"]
    as_root = install_steps(job, as_root=True, systemd_running=True, unit=unit, state=fresh, restart=False)
    assert not any("sudo" in s.command for s in as_root) and len(as_root) == 4
    running = UnitState(current=unit, enabled=True, active=True)
    assert install_steps(job, False, True, unit, running, restart=False) == []  # nothing changed: nothing sent
    new_model = install_steps(job, False, True, unit, running, restart=True)
    assert [(s.command, s.says) for s in new_model] == [("sudo -n systemctl restart edgecls-m.service", "restarted")]
    stopped = install_steps(job, False, True, unit, UnitState(unit, enabled=True, active=False), restart=False)
    assert [s.says for s in stopped] == ["started"]


def test_install_steps_for_an_image_or_a_device_without_running_systemd() -> None:
    image = DeployJob(Path("m.onnx"), parse_host("pi@pi5"), service=True, root="/mnt/sd card/")
    fresh = UnitState(current="", enabled=False, active=False)
    steps = install_steps(image, as_root=True, systemd_running=True, unit="u", state=fresh, restart=True)
    assert [s.command for s in steps] == [
        "mkdir -p '/mnt/sd card/etc/systemd/system' && tee '/mnt/sd card/etc/systemd/system/.edgecls-m.service.tmp' "
        ">/dev/null && mv -f '/mnt/sd card/etc/systemd/system/.edgecls-m.service.tmp' "
        "'/mnt/sd card/etc/systemd/system/edgecls-m.service'",
        "systemctl --root '/mnt/sd card' enable edgecls-m.service"]  # no daemon-reload, no start
    container = DeployJob(Path("m.onnx"), parse_host("pi@pi5"), service=True)
    steps = install_steps(container, as_root=True, systemd_running=False, unit="u", state=fresh, restart=True)
    assert [s.command.split(" && ")[0] for s in steps] == ["mkdir -p /etc/systemd/system",
                                                          "systemctl enable edgecls-m.service"]
