"""Resuming: a finished run extends to more epochs, and a run interrupted mid-epoch
continues from its last finished epoch with the same split and optimizer state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgecls.errors import EdgeclsError
from edgecls.rundir import RunDir
from helpers.images import write_image_folder
from helpers.runs import InterruptAt, temp_files, tiny_config


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", {"circle_r": 20, "square_g": 20, "circle_b": 20})


def history_rows(run: RunDir) -> list[list[str]]:
    return [row.split(",") for row in run.history.read_text().splitlines()[1:]]


def test_interrupted_run_resumes_from_last_finished_epoch(data: Path, tmp_path: Path) -> None:
    import keras

    from edgecls.train.fit import train

    run = RunDir(tmp_path / "run")
    config = tiny_config(data, run.root, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[InterruptAt(epoch=1, batch=2)])
    state = json.loads(run.state.read_text())
    assert (state["epoch"], state["done"]) == (1, False)
    assert len(history_rows(run)) == 1 and temp_files(run.root) == []
    split_before = run.split.read_bytes()
    steps = keras.saving.load_model(run.last_checkpoint).optimizer.iterations.numpy()

    result = train(config, resume=True)
    assert result.epochs == 3
    assert [row[0] for row in history_rows(run)] == ["1", "2", "3"]
    assert run.split.read_bytes() == split_before
    resumed = keras.saving.load_model(run.last_checkpoint)
    assert resumed.optimizer.iterations.numpy() == 3 * steps  # moments and step count kept
    assert json.loads(run.state.read_text())["done"] is True


def test_finished_run_extends_to_more_epochs(data: Path, tmp_path: Path) -> None:
    from edgecls.train.fit import train

    run = RunDir(tmp_path / "run")
    train(tiny_config(data, run.root, epochs=2))
    first_rows = history_rows(run)
    split_before = run.split.read_bytes()
    train(tiny_config(data, run.root, epochs=3), resume=True)
    rows = history_rows(run)
    assert len(rows) == 3 and rows[:2] == first_rows
    assert run.split.read_bytes() == split_before


def test_existing_run_is_not_overwritten_and_nothing_to_resume(data: Path, tmp_path: Path) -> None:
    from edgecls.train.fit import train

    with pytest.raises(EdgeclsError, match="no training run to resume"):
        train(tiny_config(data, tmp_path / "empty"), resume=True)
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.config.write_text("epochs: 1\n")
    with pytest.raises(EdgeclsError, match="already holds a training run"):
        train(tiny_config(data, run.root))
