"""`edgecls tune` on the command line: bad input ends with one clear line, exit 2, and
nothing trained or left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli import run_cli
from helpers.runs import TINY

pytest.importorskip("optuna")


def _tune(monkeypatch, capsys, data: Path, out: Path, *extra: str) -> tuple[int, str]:
    return run_cli(monkeypatch, capsys, "tune", "--data", str(data), "--out", str(out), "--families", TINY,
                   "--sizes", "32", "--trials", "1", *extra)


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("option, value, message", [
    ("--max-latency", "10", "--max-latency '10' has no unit"),
    ("--max-size", "4", "--max-size '4' has no unit"),
    ("--max-latency", "10 furlongs", "unknown unit 'furlongs'"),
])
def test_budget_without_unit(monkeypatch, capsys, image_folder: Path, tmp_path: Path, option: str,
                             value: str, message: str) -> None:
    code, output = _tune(monkeypatch, capsys, image_folder, tmp_path / "out", option, value)
    assert code == 2 and message in output and len(_error_lines(output)) == 1
    assert "Traceback" not in output and not (tmp_path / "out").exists()


def test_unreachable_host_stops_before_training(monkeypatch, capsys, image_folder: Path, tmp_path: Path) -> None:
    code, output = _tune(monkeypatch, capsys, image_folder, tmp_path / "out", "--max-latency", "10ms",
                         "--host", "nobody@127.0.0.1:1")
    assert code == 2 and len(_error_lines(output)) == 1 and "127.0.0.1" in output
    assert not (tmp_path / "out").exists()


def test_storage_that_cannot_be_opened(monkeypatch, capsys, image_folder: Path, tmp_path: Path) -> None:
    code, output = _tune(monkeypatch, capsys, image_folder, tmp_path / "out", "--max-latency", "10ms",
                         "--storage", f"sqlite:///{tmp_path}/missing/folder/study.db")
    assert code == 2 and "cannot open the study storage" in output and len(_error_lines(output)) == 1
    assert not (tmp_path / "out").exists()


def test_study_of_another_dataset(monkeypatch, capsys, image_folder: Path, tmp_path: Path) -> None:
    from edgecls.tune.study import open_search

    url = f"sqlite:///{tmp_path}/shared.db"
    open_search(url, "flowers", local=False).claim("another-fingerprint", {"data": "/data/flowers"})
    code, output = _tune(monkeypatch, capsys, image_folder, tmp_path / "out", "--max-latency", "10ms",
                         "--storage", url, "--study", "flowers")
    assert code == 2 and len(_error_lines(output)) == 1
    assert "study 'flowers' belongs to another dataset (/data/flowers)" in output
    assert not (tmp_path / "out").exists()  # the split made to compare datasets is gone too


def test_resume_of_nothing(monkeypatch, capsys, tmp_path: Path) -> None:
    code, output = run_cli(monkeypatch, capsys, "tune", "--out", str(tmp_path / "none"), "--resume")
    assert code == 2 and "holds no tuning run to resume" in output
