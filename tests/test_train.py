"""Training: run-directory artifacts, two-phase fine-tuning with frozen BatchNorm,
and the training configuration. A tiny CNN (tests/helpers/runs.py) keeps graph tracing
cheap; tests/test_train_cli.py trains a real MobileNetV3 end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecls.config import load_config
from edgecls.errors import ConfigError
from edgecls.rundir import RunDir
from edgecls.train.config import TrainConfig
from helpers.images import write_image_folder
from helpers.runs import InterruptAt, temp_files, tiny_config


@pytest.fixture(scope="module")
def trained_run(trained_tiny_cnn: tuple[Path, Path]) -> tuple[Path, Path]:
    """(data folder, run directory) of a 2-epoch tiny CNN run from scratch (conftest.py)."""
    return trained_tiny_cnn


def test_run_directory_holds_every_artifact(trained_run: tuple[Path, Path]) -> None:
    import keras

    data, run_root = trained_run
    run = RunDir(run_root)
    saved = load_config(TrainConfig, run.config)
    assert saved == tiny_config(data, run_root)
    assert run.read_labels() == ["circle_b", "circle_r", "square_g"]
    split = json.loads(run.split.read_text())
    assert sum(len(v) for v in split["subsets"].values()) == 60
    history = run.history.read_text().splitlines()
    assert history[0] == "epoch,phase,loss,accuracy,val_loss,val_accuracy,val_cross_entropy,lr_start,lr_end,seconds"
    assert [row.split(",")[:2] for row in history[1:]] == [["1", "scratch"], ["2", "scratch"]]
    state = json.loads(run.state.read_text())
    assert state["epoch"] == 2 and state["done"] and state["schema_version"] == 1
    model = keras.saving.load_model(run.best_model)
    assert model.output_shape == (None, 3)
    assert model.get_layer("backbone").get_layer("bn0").momentum == 0.9  # from scratch
    assert run.last_checkpoint.is_file()
    metrics = json.loads(run.metrics.read_text())
    assert {"schema_version", "accuracy", "per_class", "confusion_matrix", "labels"} <= set(metrics)
    assert sum(map(sum, metrics["confusion_matrix"])) == len(split["subsets"]["test"])
    assert run.confusion_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "weighted avg" in run.report_txt.read_text()
    assert temp_files(run_root) == []


def test_pretrained_weights_train_head_then_fine_tune(trained_run: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """Head phase on a frozen backbone, then the upper layers fine-tune at a lower LR;
    BatchNorm statistics and the lower layers stay exactly as pretrained, also across
    an interruption in the middle of fine-tuning."""
    import keras

    from edgecls.train.fit import train

    data, source_run = trained_run
    source = keras.saving.load_model(RunDir(source_run).best_model).get_layer("backbone")
    config = tiny_config(data, tmp_path / "run", weights=str(RunDir(source_run).best_model),
                         epochs=3, head_epochs=1, fine_tune_fraction=0.5)
    with pytest.raises(KeyboardInterrupt):  # in the 2nd fine-tuning epoch
        train(config, callbacks=[InterruptAt(epoch=1, batch=1)])
    result = train(config, resume=True)
    run = RunDir(tmp_path / "run")
    phases = [row.split(",")[1] for row in run.history.read_text().splitlines()[1:]]
    assert phases == ["head", "finetune", "finetune"] and result.epochs == 3
    from edgecls.train.checkpoint import read_history

    rows = read_history(run)
    assert float(rows[0]["lr_start"]) == pytest.approx(config.lr)  # the head's rate
    assert float(rows[1]["lr_start"]) == pytest.approx(config.lr / 10)  # fine-tuning's
    assert float(rows[2]["lr_end"]) < float(rows[2]["lr_start"]) < float(rows[1]["lr_end"])
    tuned = keras.saving.load_model(run.last_checkpoint).get_layer("backbone")
    for name in ("bn0", "bn1"):
        for got, want in zip(tuned.get_layer(name).get_weights(),
                             source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(tuned.get_layer("conv0").get_weights()[0],
                                  source.get_layer("conv0").get_weights()[0])
    assert not np.array_equal(tuned.get_layer("conv1").get_weights()[0],
                              source.get_layer("conv1").get_weights()[0])


def test_early_stopping_ends_the_run(trained_run: tuple[Path, Path], tmp_path: Path) -> None:
    """Also the progress bar the CLI hands to ``train``: one summary line per epoch."""
    from io import StringIO

    from rich.console import Console

    from edgecls.present.train_progress import RichProgress
    from edgecls.train.fit import train

    data, _ = trained_run
    drawn = StringIO()
    result = train(tiny_config(data, tmp_path / "run", epochs=30, patience=1, lr=1e-6),
                   progress=lambda phase, first: RichProgress(phase, first, Console(file=drawn)))
    assert result.epochs < 30
    summaries = [line for line in drawn.getvalue().splitlines() if line.startswith("scratch epoch")]
    assert len(summaries) == result.epochs and "val_accuracy" in summaries[-1]
    state = json.loads(RunDir(tmp_path / "run").state.read_text())
    assert state["stopped_early"] and state["wait"] == 1


def test_class_weights_balance_the_classes(tmp_path: Path) -> None:
    from edgecls.data.split import prepare_split
    from edgecls.train.fit import _class_weights

    data = write_image_folder(tmp_path / "images", {"many": 40, "few": 10})
    split = prepare_split(data, tmp_path / "run")
    weights = _class_weights(split)
    counts = np.bincount([label for _, label in split.items("train")])
    assert weights[0] * counts[0] == pytest.approx(weights[1] * counts[1])
    assert np.dot(counts, [weights[0], weights[1]]) == pytest.approx(counts.sum())


def test_config_yaml_with_cli_overrides(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("model: mobilenet_v2\nepochs: 7\nalpha: 0.35\naugment: {rotation: 0.0}\n")
    config = load_config(TrainConfig, path, {"epochs": 3, "lr": None})
    assert (config.model, config.epochs, config.alpha, config.lr) == ("mobilenet_v2", 3, 0.35, None)
    path.write_text("epoch: 7\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(TrainConfig, path)


@pytest.mark.parametrize("field, value", [("epochs", 0), ("img_size", 16), ("dropout", 1.0),
                                          ("fine_tune_fraction", 0.0), ("head_epochs", 5)])
def test_invalid_config_values(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{"epochs": 3, field: value}).validate()
