"""`edgecls train --init-from OLD`: OLD's weights and head by class name, OLD's split rule
inherited (its held-out images stay held out), a new class extending the head, and the
inputs that cannot continue OLD refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecls.config import save_config
from edgecls.data.split import Split, prepare_split
from edgecls.errors import DataError
from edgecls.models import build
from edgecls.rundir import RunDir
from edgecls.train.init_from import carry_head
from helpers.cli import run_cli
from helpers.images import write_image_folder
from helpers.runs import TINY, tiny_config

OLD_SALT = 3  # not the default seed: the new run must inherit it


@pytest.fixture
def old_run(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset of two classes and a (constructed, untrained) run of the tiny CNN on it."""
    data = write_image_folder(tmp_path / "data", {"circle_r": 30, "square_g": 30})
    run = tmp_path / "old"
    prepare_split(data, run, (0.6, 0.2, 0.2), seed=OLD_SALT)
    save_config(tiny_config(data, run, seed=OLD_SALT, split=[0.6, 0.2, 0.2]), run / "config.yaml")
    build(TINY, num_classes=2, include_top=False, input_size=32).save(run / "best.keras")
    return data, run


def _grow(data: Path) -> None:
    """New images of the old classes and a new class sorting first (indices shift)."""
    write_image_folder(data, {"circle_r": 10, "square_g": 10, "circle_b": 30}, seed=1, ext=".jpg")


def test_head_is_carried_by_class_name(old_run: tuple[Path, Path]) -> None:
    from edgecls.models.float_model import load_float_model

    _, run = old_run
    labels = ["circle_b", "circle_r", "square_g"]
    model = build(TINY, num_classes=3, include_top=False, input_size=32)
    fresh = model.get_layer("head_dense").get_weights()[0][:, 0].copy()
    carry_head(model, RunDir(run), labels)
    kernel, bias = model.get_layer("head_dense").get_weights()
    old_kernel, old_bias = load_float_model(run / "best.keras").get_layer("head_dense").get_weights()
    np.testing.assert_array_equal(kernel[:, 1:], old_kernel)  # circle_r, square_g moved up by one
    np.testing.assert_array_equal(bias[1:], old_bias)
    np.testing.assert_array_equal(kernel[:, 0], fresh)  # the new class keeps its own output


def test_train_init_from_keeps_old_held_out_images_held_out(old_run: tuple[Path, Path], tmp_path: Path,
                                                            monkeypatch, capsys) -> None:
    data, old = old_run
    _grow(data)
    new = tmp_path / "new"
    code, text = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--out", str(new),
                         "--init-from", str(old), "--epochs", "1", "--batch-size", "16", "--no-progress")
    assert code == 0, text
    assert f"model {TINY}, weights {(old / 'best.keras').resolve()}" in text
    old_split, new_split = Split.load(old / "split.json"), Split.load(new / "split.json")
    assert new_split.seed == OLD_SALT and new_split.fractions == (0.6, 0.2, 0.2)
    assert new_split.labels == ["circle_b", "circle_r", "square_g"]
    new_subset = {rel: subset for subset, entries in new_split.subsets.items() for rel, _ in entries}
    for subset, entries in old_split.subsets.items():
        for rel, _ in entries:
            assert new_subset[rel] == subset, rel
    assert any(rel.endswith(".jpg") for rel, _ in new_split.subsets["test"])  # new images tested too
    assert (new / "best.keras").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--model", "mobilenet_v3_small"], "differs from tiny_cnn"),
    (["--weights", "none"], "cannot be combined with --init-from"),
])
def test_options_that_cannot_continue_old_exit_2(old_run: tuple[Path, Path], tmp_path: Path, extra: list[str],
                                                 message: str, monkeypatch, capsys) -> None:
    data, old = old_run
    code, text = run_cli(monkeypatch, capsys, "train", "--data", str(data), "--out", str(tmp_path / "new"),
                         "--init-from", str(old), *extra)
    assert code == 2 and message in text and "Traceback" not in text, text
    assert not (tmp_path / "new").exists()


def test_a_dataset_without_an_old_class_is_refused(old_run: tuple[Path, Path], tmp_path: Path) -> None:
    from edgecls.train.init_from import apply_init_from

    _, old = old_run
    other = write_image_folder(tmp_path / "other", {"circle_r": 5, "circle_b": 5})
    with pytest.raises(DataError, match="square_g.*would forget"):
        apply_init_from(tiny_config(other, tmp_path / "new", model=None, weights=None, img_size=None,
                                    init_from=str(old)))
