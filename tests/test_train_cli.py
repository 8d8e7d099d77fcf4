"""`edgecls train` / `edgecls evaluate` / `edgecls models list` from the command line:
a real MobileNetV3-Small end to end, and every bad input as a one-line error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.errors import ConfigError, DataError, EdgeclsError, ModelError
from helpers.images import write_image_folder
from helpers.runs import TINY  # importing it registers the tiny CNN family


runner = CliRunner()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", {"circle_r": 20, "square_g": 20, "circle_b": 20})


@pytest.mark.parametrize("model", [
    pytest.param([TINY]),
    pytest.param(["mobilenet_v3_small", "--alpha", "0.75"], marks=pytest.mark.slow),
])
def test_train_then_evaluate(model: list[str], data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(data), "--model", *model,
                                 "--img-size", "32", "--epochs", "1", "--batch-size", "16",
                                 "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "balanced accuracy" in result.output
    result = runner.invoke(app, ["evaluate", str(run), "--split", "test", "--json",
                                 str(tmp_path / "eval.json"), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["labels"] == ["circle_b", "circle_r", "square_g"]
    assert {"accuracy", "top_2_accuracy", "per_class", "confusion_matrix"} <= set(report)
    assert "weighted avg" in result.output


def test_models_list() -> None:
    result = runner.invoke(app, ["models", "list", "mobilenet*"])
    assert result.exit_code == 0
    for name in ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"):
        assert name in result.output
    assert "efficientnet" not in result.output


def train_args(data: Path | str, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--img-size", "32",
            "--epochs", "1", "--no-progress", *extra]


@pytest.mark.parametrize("case, error, message", [
    ("unknown_model", EdgeclsError, "unknown model 'mobilenet_v9'"),
    ("bad_weights", ModelError, "does not exist"),
    ("missing_dir", DataError, "does not exist"),
    ("empty_dir", DataError, ""),
    ("single_class", EdgeclsError, "class"),
    ("bad_alpha_option", ConfigError, "alpha"),
    ("resume_with_config", ConfigError, "--config cannot be combined with --resume"),
])
def test_bad_input_is_a_user_error(case: str, error: type, message: str, data: Path,
                                   tmp_path: Path) -> None:
    out = tmp_path / "run"
    (tmp_path / "empty").mkdir()
    write_image_folder(tmp_path / "one", {"only": 10})
    (tmp_path / "train.yaml").write_text("epochs: 1\n")
    args = {
        "unknown_model": train_args(data, out, "--model", "mobilenet_v9"),
        "bad_weights": train_args(data, out, "--weights", str(tmp_path / "nope.weights.h5")),
        "missing_dir": train_args(tmp_path / "nowhere", out),
        "empty_dir": train_args(tmp_path / "empty", out),
        "single_class": train_args(tmp_path / "one", out),
        "bad_alpha_option": train_args(data, out, "--model", "efficientnet_b0", "--alpha", "0.5"),
        "resume_with_config": ["train", "--out", str(out), "--resume", "--config",
                               str(tmp_path / "train.yaml")],
    }[case]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, error), result.output
    assert message in str(result.exception)


def test_real_entry_point_prints_one_line_and_exits_2(data: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "edgecls", *train_args(
        data, tmp_path / "run", "--weights", str(tmp_path / "missing.keras"))],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing.keras does not exist" in errors[0]
