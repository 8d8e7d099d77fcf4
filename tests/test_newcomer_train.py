"""`edgecls train` as a newcomer uses it: an --out folder of their own files, a log file
instead of a terminal, the learning rates history.csv shows, and a pre-split dataset
trained, evaluated and exported through the CLI (regressions found by trying it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.data.split import Split
from edgecls.errors import ConfigError
from edgecls.rundir import RunDir
from helpers.images import write_image_folder
from helpers.runs import TINY, tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, RunDir]:
    """(printed output, run) of `edgecls train` from pretrained weights with layer-wise
    decay and progress bars on, its output captured as a file would (no terminal)."""
    from edgecls.models import build

    root = tmp_path_factory.mktemp("fine_tuned")
    data = write_image_folder(root / "d", {"cats": 12, "dogs": 12})
    weights = root / "pretrained.keras"
    build(TINY, weights="none", include_top=False, num_classes=2, input_size=32).save(weights)
    (root / "train.yaml").write_text("layer_lr_decay: 0.5\nhead_epochs: 1\nbatch_size: 8\n")
    run = RunDir(root / "run")
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run.root),
                                 "--model", TINY, "--weights", str(weights), "--img-size", "32",
                                 "--epochs", "2", "--config", str(root / "train.yaml")])
    assert result.exit_code == 0, result.output
    return result.output, run


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


def test_train_logs_to_a_file_one_clean_line_each(fine_tuned: tuple[str, RunDir]) -> None:
    """`edgecls train ... > train.log 2>&1`: the progress bars left blank lines in the file."""
    output, _ = fine_tuned
    lines = output.splitlines()
    assert [line.split(":")[0] for line in lines if " epoch " in line or "features" in line] == [
        "head features", "head features", "head epoch 1", "finetune epoch 2",
        "kept epoch 2 (fine-tune 1)"]  # which epoch best.keras holds
    assert "" not in [line.strip() for line in lines], output
    assert "\x1b" not in output and "\r" not in output


def test_history_shows_each_epochs_first_and_last_learning_rate(
        fine_tuned: tuple[str, RunDir]) -> None:
    """history.csv's one `lr` (the rate after the epoch's last step: 3e-05 for a head
    trained from 3e-3) read as if the head had trained at 3e-05."""
    from edgecls.train.checkpoint import read_history
    from edgecls.train.config import FINE_TUNE_LR, HEAD_LR

    _, run = fine_tuned
    assert run.history.read_text().splitlines()[0] == (
        "epoch,phase,loss,accuracy,val_loss,val_accuracy,val_cross_entropy,lr_start,lr_end,seconds")
    head, finetune = read_history(run)
    assert float(head["lr_start"]) == pytest.approx(HEAD_LR)
    assert float(finetune["lr_start"]) == pytest.approx(FINE_TUNE_LR)  # the base (head) rate
    for row in (head, finetune):  # one epoch of a cosine decay to 1 % of the start
        assert float(row["lr_start"]) / 100 < float(row["lr_end"]) < float(row["lr_start"])


def test_resume_reads_the_lr_column_of_older_runs(fine_tuned: tuple[str, RunDir],
                                                   tmp_path: Path) -> None:
    import shutil

    from edgecls.train.checkpoint import read_history

    _, finished = fine_tuned
    run = RunDir(tmp_path / "run")
    shutil.copytree(finished.root, run.root)
    old = [line.split(",") for line in run.history.read_text().splitlines()]
    run.history.write_text("".join(",".join(row[:6] + [row[8], row[9]]) + "\n" for row in old)
                           .replace("lr_end", "lr"))  # the columns of older runs
    result = runner.invoke(app, ["train", "--out", str(run.root), "--resume", "--epochs", "3",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = read_history(run)
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    assert [row["lr_end"] for row in rows[:2]] == [row[8] for row in old[1:]]
    assert [row["lr_start"] for row in rows[:2]] == ["", ""]
    assert float(rows[2]["lr_start"]) > 0


def _presplit(root: Path, subsets: dict[str, int]) -> Path:
    """DIR/<subset>/<class>/*.png with ``subsets[name]`` images per class."""
    for seed, (subset, count) in enumerate(subsets.items()):
        write_image_folder(root / subset, {"circle_r": count, "square_g": count}, seed=seed + 1)
    return root


def _subset_folders(run: RunDir) -> dict[str, set[str]]:
    import json

    subsets = json.loads(run.split.read_text())["subsets"]
    return {name: {rel.split("/")[0] for rel, _ in entries} for name, entries in subsets.items()}


def test_a_presplit_dataset_trains_evaluates_and_exports_as_given(tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    import json

    from helpers.cli import run_cli

    data = _presplit(tmp_path / "d", {"train": 16, "val": 5, "test": 6})
    run = RunDir(tmp_path / "run")
    code, text = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--out", str(run.root),
                         "--model", TINY, "--img-size", "32", "--epochs", "2",
                         "--batch-size", "8", "--no-progress")
    assert code == 0, text
    assert "data: 32 train, 10 val, 12 test images in 2 classes" in text
    assert _subset_folders(run) == {"train": {"train"}, "val": {"val"}, "test": {"test"}}
    assert json.loads(run.metrics.read_text())["num_samples"] == 12

    code, text = run_cli(monkeypatch, capsys, "evaluate", str(run.root), "--split", "val",
                         "--json", str(tmp_path / "val.json"), "--gallery", "0")
    assert code == 0, text
    assert json.loads((tmp_path / "val.json").read_text())["num_samples"] == 10

    code, text = run_cli(monkeypatch, capsys, "export", str(run.root), "--formats", "tflite",
                         "--precision", "int8", "--no-remedies")
    assert code == 0, text
    assert "" not in [line.strip() for line in text.splitlines()], text  # no bar off a terminal
    manifest = json.loads((run.root / "export" / "manifest.json").read_text())
    assert manifest["held_out_by_split"] == {"val": 10, "test": 12}
    assert (run.root / "export" / manifest["artifacts"][0]["path"]).is_file()


def test_a_presplit_dataset_without_test_keeps_val_for_the_test(tmp_path: Path) -> None:
    """The given val/ becomes the test split; a new val is carved from train/ only."""
    data = _presplit(tmp_path / "d", {"train": 20, "val": 5})
    run = RunDir(tmp_path / "run")
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run.root), "--model",
                                 TINY, "--img-size", "32", "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert _subset_folders(run) == {"train": {"train"}, "val": {"train"}, "test": {"val"}}
    counts = {name: len(entries) for name, entries in Split.load(run.split).subsets.items()}
    assert counts["train"] + counts["val"] == 40 and counts["val"] >= 2 and counts["test"] == 10
    assert "the given val/ is used as the test split" in result.output


def test_exporters_names_of_presplit_folders_are_subsets_not_classes(tmp_path: Path) -> None:
    """Roboflow's train/valid/test was read as a flat dataset of three classes named
    train, valid and test."""
    from edgecls.data.check import check_dataset
    from edgecls.data.split import make_split

    for name, folders in (("roboflow", ("train", "valid", "test")),
                          ("kaggle", ("Training", "Testing")), ("tfds", ("train", "validation"))):
        data = tmp_path / name
        for seed, folder in enumerate(folders):
            write_image_folder(data / folder, {"cats": 6, "dogs": 6}, seed=seed + 1)
        report = check_dataset(data)
        assert (report.layout, report.labels) == ("presplit", ["cats", "dogs"]), name
        split = make_split(report)
        for subset, entries in split.subsets.items():
            given = {rel.split("/")[0] for rel, _ in entries}
            wanted = {"roboflow": {"train": {"train"}, "val": {"valid"}, "test": {"test"}},
                      "kaggle": {"train": {"Training"}, "val": {"Training"}, "test": {"Testing"}},
                      "tfds": {"train": {"train"}, "val": {"train"}, "test": {"validation"}}}
            assert given == wanted[name][subset], (name, subset)
        notes = {"roboflow": [], "kaggle": [],
                 "tfds": ["the given validation/ is used as the test split and a new val split "
                          "is carved from train/"]}[name]
        for note in notes:  # the user's own folder names, not edgecls' subset names
            assert any(note in line for line in split.notes), (name, split.notes)


def test_subset_folders_beside_a_folder_that_is_none_are_refused(tmp_path: Path) -> None:
    from edgecls.data.scan import scan_dataset
    from edgecls.errors import DataError

    data = tmp_path / "d"
    for folder in ("train", "valid", "test"):
        write_image_folder(data / folder, {"cats": 3, "dogs": 3})
    (data / "__MACOSX" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"looks pre-split .* holds __MACOSX/, which is not"):
        scan_dataset(data)
    (data / "__MACOSX" / "train").rmdir()
    (data / "__MACOSX").rename(data / "val")
    with pytest.raises(DataError, match="has val/ and valid/, both read as the val subset"):
        scan_dataset(data)
    # A flat dataset may have a class named train (of images, not class folders).
    flat = write_image_folder(tmp_path / "vehicles", {"train": 3, "test": 3, "bus": 3})
    assert scan_dataset(flat).labels == ["bus", "test", "train"]
