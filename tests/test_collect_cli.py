"""`edgecls run --collect DIR` from the command line: frames kept with their sidecars, a
restart continuing the folder, bad options as one-line errors, and the device's arguments
of `run --remote`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.cli import run_cli
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

from edgecls.api.live import _PARAMETERS
from edgecls.api.live_setup import device_args
from edgecls.digest import file_sha256


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_onnx(tmp_path_factory.mktemp("collect") / "colors.onnx", TinyNet(), tiny_metadata())


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MJPG .avi: 3 red frames, then 5 grey ones (every class scores about 1/3)."""
    path = tmp_path_factory.mktemp("video") / "grey.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for bgr in [(0, 0, 255)] * 3 + [(128, 128, 128)] * 5:
        writer.write(np.full((48, 64, 3), bgr, np.uint8))
    writer.release()
    return path


def _summary(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


def test_collect_keeps_the_unsure_still_scene_once_and_a_restart_continues(
        monkeypatch, capsys, model: Path, video: Path, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    args = ("run", str(model), "--source", str(video), "--jsonl", str(tmp_path / "out.jsonl"),
            "--collect", str(folder), "--collect-below", "0.9", "--collect-max-per-minute", "10")
    code, output = run_cli(monkeypatch, capsys, *args)
    assert code == 0, output
    collected = _summary(output)["collect"]
    assert collected["kept"] == 1 and collected["skipped"] == {"duplicate": 4}, collected
    assert f"collect: kept 1 frames in {folder}" in output
    sidecar = json.loads(next(folder.glob("*.json")).read_text())
    assert sidecar["frame"] == 3 and sidecar["reasons"] == ["low_confidence"]
    assert sidecar["source"] == f"video {video}" and sidecar["model"]["sha256"] == file_sha256(model)
    code, output = run_cli(monkeypatch, capsys, *args)  # the same scene again: already in the folder
    assert code == 0 and _summary(output)["collect"]["skipped"] == {"duplicate": 5}
    assert len(list(folder.glob("*.jpg"))) == 1


@pytest.mark.parametrize(("options", "message"), [
    (("--collect-below", "0.3"), "--collect-below needs --collect DIR"),
    (("--collect", "{tmp}/file"), "--collect {tmp}/file is a file"),
    (("--collect", "{tmp}/new", "--collect-classes", "red,purple"), "the model has no class 'purple'"),
    (("--collect", "{tmp}/new", "--collect-when-full", "panic"), "--collect-when-full 'panic' is not one of"),
])
def test_bad_collect_options_are_one_line_errors(monkeypatch, capsys, model: Path, video: Path,
                                                 tmp_path: Path, options: tuple[str, ...], message: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    filled = [option.format(tmp=tmp_path) for option in options]
    code, output = run_cli(monkeypatch, capsys, "run", str(model), "--source", str(video), "--headless", *filled)
    assert code == 2 and "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message.format(tmp=tmp_path) in errors[0], output
    assert not (tmp_path / "new").exists()  # refused before anything was written


def test_remote_run_passes_the_collect_options_to_the_device() -> None:
    given = {name: p.default for name, p in _PARAMETERS.items()}
    given.update(model="m.onnx", remote="pi@cam", collect=Path("frames"), collect_below=0.4, collect_flicker=True,
                 collect_when_full="evict-oldest", verify=False, token="secret-token")
    args = " ".join(device_args(given, {name: p.default for name, p in _PARAMETERS.items()}))
    assert "--collect frames --collect-below 0.4 --collect-flicker" in args
    assert "--collect-when-full evict-oldest" in args and "--collect-margin" not in args
    assert "--no-verify" in args and "secret" not in args and "pi@cam" not in args and "m.onnx" not in args


def test_the_device_args_are_spelled_as_the_run_command_spells_its_options() -> None:
    """``remote=`` spells each option from its API name: every one must be a flag of `edgecls run`."""
    import typer.main

    from edgecls.api.live_setup import flag
    from edgecls.cli import app

    for param in typer.main.get_command(app).commands["run"].params:
        if param.param_type_name != "option":
            continue
        assert flag(param.name) in param.opts, param.opts
        if param.is_flag and param.default is True:
            assert flag(f"no_{param.name}") in param.secondary_opts, param.secondary_opts
