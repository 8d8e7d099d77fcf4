"""`edgecls train` as a newcomer uses it: an --out folder of their own files, a log file
instead of a terminal, the learning rates history.csv shows, and a pre-split dataset
trained, evaluated and exported through the CLI (regressions found by trying it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.errors import ConfigError
from edgecls.rundir import RunDir
from helpers.images import write_image_folder
from helpers.runs import tiny_config

runner = CliRunner()


def test_train_refuses_an_out_folder_of_other_files(tmp_path: Path) -> None:
    data = write_image_folder(tmp_path / "d", {"cats": 3, "dogs": 3})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n")
    (mine / "holiday").mkdir()
    (tmp_path / "a_file").write_text("x")
    for out, message in ((mine, "is a folder of other files (holiday, notes.txt)"),
                         (tmp_path / "a_file", "is a file, not a folder")):
        result = runner.invoke(app, ["train", "--data", str(data), "--out", str(out)])
        assert isinstance(result.exception, ConfigError), result.output
        assert message in str(result.exception)
    assert sorted(p.name for p in mine.iterdir()) == ["holiday", "notes.txt"]


def test_a_new_run_may_start_in_an_empty_folder_or_an_earlier_runs(tmp_path: Path) -> None:
    for name, files in (("missing", None), ("empty", []), ("finder", [".DS_Store"]),
                        ("interrupted", ["split.json", "labels.txt"])):
        folder = tmp_path / name
        if files is not None:
            folder.mkdir()
            for file in files:
                (folder / file).write_text("")
        RunDir(folder).require_room_for_run()


def test_the_training_api_refuses_it_too(tmp_path: Path) -> None:
    from edgecls.train.fit import train

    data = write_image_folder(tmp_path / "d", {"cats": 3, "dogs": 3})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.docx").write_text("")
    with pytest.raises(ConfigError, match="not an edgecls run"):
        train(tiny_config(data, mine))
    assert [p.name for p in mine.iterdir()] == ["report.docx"]
