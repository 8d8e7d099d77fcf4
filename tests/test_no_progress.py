"""One progress switch everywhere: on a terminal the commands draw their bars, and
``--no-progress`` (the API's ``progress=False``) draws none. Checked on the commands that
need no trained run (data check, bench, explain on a tiny ONNX model); the parity test
proves every command's ``--no-progress`` is its API function's ``progress``."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.images import write_color_folder
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata

import edgecls

ELAPSED = "0:00:0"  # the bars' elapsed-time column: only a drawn bar shows it


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_onnx(tmp_path_factory.mktemp("no_progress") / "colors.onnx", TinyNet(), tiny_metadata())


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout and stderr count as a terminal for rich (as in a shell), though captured."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TERM", "xterm")


def _commands(model: Path, tmp_path: Path) -> dict[str, list[str]]:
    colors = write_color_folder(tmp_path / "colors", per_class=3)
    return {
        "data check": ["data", "check", str(colors)],
        "bench": ["bench", str(model), "--runs", "2", "--warmup", "0", "--json", str(tmp_path / "b.json")],
        "explain": ["explain", str(model), str(colors / "red"), "--masks", "8", "--out", str(tmp_path / "why")],
    }


@pytest.mark.parametrize("command", ["data check", "bench", "explain"])
def test_bars_are_drawn_on_a_terminal_and_no_progress_draws_none(terminal, model: Path, tmp_path: Path,
                                                                 monkeypatch, capsys, command: str) -> None:
    args = _commands(model, tmp_path)[command]
    code, drawn = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and ELAPSED in drawn, drawn
    code, quiet = run_cli(monkeypatch, capsys, *args, "--no-progress")
    assert code == 0 and ELAPSED not in quiet, quiet


def test_the_api_progress_argument_is_the_same_switch(terminal, model: Path, tmp_path: Path, capsys) -> None:
    colors = write_color_folder(tmp_path / "colors", per_class=3)
    edgecls.check_data(colors)
    assert ELAPSED in capsys.readouterr().err
    edgecls.check_data(colors, progress=False)
    assert capsys.readouterr() == ("", "")
