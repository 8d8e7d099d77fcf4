"""The README's tour, as written: every command either runs on the bundled digits (in a
folder laid out as the tour expects: ``photos/``, ``runs/photos``, ``img.jpg``,
``video.mp4``; devices are the test sshd) or is in ``SKIP`` with the reason.

The default suite checks that the tour and this file agree and that every command parses
with the real command line; running the whole tour takes minutes and is ``slow``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import cv2
import pytest
from helpers.cli import run_cli
from helpers.readme_tour import Command, parse_with_cli, readme_commands
from helpers.sshd import SshLab, missing_tools

README = Path(__file__).resolve().parents[1] / "README.md"
TOUR = "A tour"

# Commands not run here, by a piece of their text, and why.
SKIP = {
    'pip install "edgecls[runtime-tflite]"': "installs a package; the test environment has every extra",
    "--source 0 --target raspberry-pi-4": "needs a camera",
    "--source rtsp://": "needs an RTSP stream",
    "--remote pi@pi5.local --source 0": "needs a camera on the device",
    "deploy runs/photos/export/model_int8.tflite": "installs a systemd service (sudo, systemctl) on a "
                                                   "real device; the test sshd is not one",
}

# Placeholders of the tour and what stands for them here (word by word, see Command.replaced).
PLACEHOLDERS = {
    "photos/tulips/": "photos/3/",  # a class folder of the digits
    "model_int8.tflite": "runs/photos/export/model_int8.tflite",  # "copied to the device"
    "pi4.json": "laptop.json",  # no Pi here: this machine's file stands in for the Pi's
    "pi@pi5.local": "device-0",  # the test sshd's two hosts (aliases in its ssh config)
    "jetson": "device-1",
}

# Options added to keep the tour short: (leading words, options). The defaults (Lite0 from
# ImageNet weights at the data's size, 500 RISE masks, 100 timed runs) take far longer; a
# MobileNet, as structured pruning needs one, at 64 px, where Grad-CAM still has a 2x2 map.
SMALLER = [
    (("edgecls", "train", "--data"), ("--model", "mobilenet_v3_small", "--weights", "none",
                                       "--epochs", "1", "--img-size", "64")),
    (("edgecls", "bench"), ("--runs", "5", "--warmup", "1", "--max-per-class", "5")),
    (("edgecls", "explain", "runs/photos/export/model_int8.tflite"), ("--masks", "32")),
]


def skip_reason(command: Command) -> str | None:
    return next((reason for piece, reason in SKIP.items() if piece in command.text), None)


def tour() -> list[tuple[Command, str | None]]:
    """Every tour command, ready to run here (placeholders replaced, options added), with
    the reason it is skipped (None: it runs)."""
    out = []
    for command in readme_commands(README, TOUR):
        reason = skip_reason(command)
        if reason is None:
            command = _smaller(command.replaced(PLACEHOLDERS))
        out.append((command, reason))
    return out


def _smaller(command: Command) -> Command:
    argv = command.argv
    for words, options in SMALLER:
        if tuple(argv[:len(words)]) == words:
            command = command.with_extra(*options)
    if argv[:2] == ["edgecls", "bench"] and "--host" in argv:
        command = command.with_extra("--remote-python", sys.executable)  # the sshd runs this checkout
    return command


def test_every_tour_command_runs_here_or_is_skipped_with_a_reason() -> None:
    commands = readme_commands(README, TOUR)
    assert len(commands) >= 15
    for piece in SKIP:
        assert any(piece in c.text for c in commands), f"SKIP entry {piece!r} matches no tour command"
    for command, reason in tour():
        assert reason or command.argv[0] == "edgecls", f"{command.text}: neither edgecls nor skipped"


def test_every_tour_command_parses_with_the_real_command_line() -> None:
    """Options and arguments as the CLI declares them (nothing runs): a renamed option or
    command breaks this before a user meets it."""
    for command, reason in tour():
        if reason is None:
            parse_with_cli(command.argv)


@pytest.fixture
def ssh_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two devices on the test sshd, as `device-0` and `device-1`; None without sshd."""
    if missing_tools() is not None:
        yield None
        return
    lab = SshLab(tmp_path / "ssh")
    try:
        lab.start("pi")
        lab.start("jetson")
        monkeypatch.setenv("EDGECLS_SSH_CONFIG", str(lab.config))
        yield lab
    except RuntimeError:  # e.g. no privilege separation directory for a non-root user
        yield None
    finally:
        lab.stop()


@pytest.mark.slow  # the whole tour: train, six exports, two prunes, benches, explain (minutes)
def test_the_tour_runs_on_the_digits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys,
                                     ssh_lab) -> None:
    _lay_out_the_tour(tmp_path)
    monkeypatch.chdir(tmp_path)
    ran = []
    for command, reason in tour():
        if reason:
            continue
        if "--host" in command.argv and ssh_lab is None:
            warnings.warn(f"not run: {command.text} (no sshd here: {missing_tools()})", stacklevel=1)
            continue
        for name, value in command.env.items():
            monkeypatch.setenv(name, value)
        started = time.monotonic()
        code, output = run_cli(monkeypatch, capsys, *command.argv[1:])
        assert code == 0, f"{command.text}\n{output[-3000:]}"
        ran.append(command.argv[1])
        with capsys.disabled():  # shown with pytest -s
            print(f"{time.monotonic() - started:6.1f} s  {command.text}")
    assert ran.count("bench") == (2 if ssh_lab else 1) and "explain" in ran
    measured = {Path(r["file"]).suffix for r in json.loads(Path("laptop.json").read_text())["records"]}
    assert measured == {".tflite", ".onnx", ".xml"}  # the export folder, .bin beside its .xml


def _lay_out_the_tour(root: Path, per_class: int = 40) -> None:
    """``photos/`` (the digits, ``per_class`` of each, one folder per class), ``img.jpg``
    and ``video.mp4``."""
    from edgecls.data.digits import write_digits_dataset

    photos = write_digits_dataset(root / "photos")
    for folder in photos.iterdir():
        for extra in sorted(folder.iterdir())[per_class:]:
            extra.unlink()
    frames = [cv2.imread(str(p)) for p in sorted((photos / "3").glob("*.png"))[:10]]
    cv2.imwrite(str(root / "img.jpg"), frames[0])
    writer = cv2.VideoWriter(str(root / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0,
                             (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
