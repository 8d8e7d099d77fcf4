"""The frozen-backbone head phase on cached features (edgecls/train/feature_cache.py):
it trains the full model's head, its checkpoints are full models that predict what the
in-memory model predicted, it resumes, and turned off the head phase trains on images
with the same history layout and learning-rate schedule."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest

from edgecls.rundir import RunDir
from helpers.runs import InterruptAt, temp_files, tiny_config


@pytest.fixture(scope="module")
def pretrained(trained_tiny_cnn: tuple[Path, Path]) -> tuple[Path, Path]:
    """(data folder, weights file): a tiny CNN trained 2 epochs from scratch (conftest.py)."""
    data, run = trained_tiny_cnn
    return data, RunDir(run).best_model


def history(run: RunDir) -> list[dict[str, str]]:
    from edgecls.train.checkpoint import read_history

    return read_history(run)


def drawn_progress(drawn: StringIO):
    """The CLI's progress factory, drawing into ``drawn``."""
    from rich.console import Console

    from edgecls.present.train_progress import RichProgress

    return lambda phase, first: RichProgress(phase, first, Console(file=drawn, width=200))


class _HeadWeights:
    """Keras callback keeping the trained model's weights at the end of training."""

    def __new__(cls):
        import keras

        class _Keep(keras.callbacks.Callback):
            weights: list[np.ndarray] = []

            def on_train_end(self, logs: dict | None = None) -> None:
                type(self).weights = [np.array(w) for w in self.model.get_weights()]

        return _Keep()


def test_head_phase_on_cache_saves_full_models_that_predict_the_same(
        pretrained: tuple[Path, Path], tmp_path: Path) -> None:
    import keras

    from edgecls.train.fit import train

    data, weights = pretrained
    run = RunDir(tmp_path / "run")
    config = tiny_config(data, run.root, weights=str(weights), epochs=3, head_epochs=3,
                         head_cache_views=2, augment={"enabled": True}, lr=0.05)
    drawn, keep = StringIO(), _HeadWeights()
    result = train(config, progress=drawn_progress(drawn), callbacks=[keep])
    lines = drawn.getvalue().splitlines()
    assert sum(line.startswith("head features: train x3: ") for line in lines) == 1
    assert sum(line.startswith("head features: val: 1 batches in ") for line in lines) == 1
    assert [line.split(":")[0] for line in lines if " epoch " in line] == [
        "head epoch 1", "head epoch 2", "head epoch 3"]
    rows = history(run)
    assert [row["phase"] for row in rows] == ["head"] * 3 and result.epochs == 3

    # best.keras is a full model whose val loss and accuracy on the val images are the
    # ones the head model measured on the cached features at its best epoch.
    best = keras.saving.load_model(run.best_model, compile=True)
    assert best.input_shape == (None, 32, 32, 3) and best.output_shape == (None, 3)
    best_row = rows[json.loads(run.state.read_text())["best_epoch"] - 1]
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split

    images, labels = load_arrays(Split.load(run.split).items("val"), (32, 32))
    onehot = np.eye(3, dtype=np.float32)[labels]
    loss, accuracy, _ = best.evaluate(images.astype(np.float32), onehot, verbose=0)
    assert accuracy == pytest.approx(float(best_row["val_accuracy"]), abs=1e-6)
    assert accuracy == pytest.approx(result.best_val_accuracy, abs=1e-6)
    assert loss == pytest.approx(float(best_row["val_loss"]), rel=1e-4)
    # the kept epoch's plain cross-entropy: the model's own probabilities, no smoothing
    plain = keras.losses.categorical_crossentropy(onehot, best.predict(images.astype(np.float32), verbose=0))
    assert float(np.mean(plain)) == pytest.approx(float(best_row["val_cross_entropy"]), rel=1e-4)

    # last.keras holds the weights the in-memory head model ended with; the frozen
    # backbone is exactly the pretrained one, the head moved.
    last = keras.saving.load_model(run.last_checkpoint)
    for got, want in zip(last.get_layer("head_dense").get_weights(), keep.weights):
        np.testing.assert_array_equal(got, want)
    source = keras.saving.load_model(weights)
    for got, want in zip(last.get_layer("backbone").get_weights(),
                         source.get_layer("backbone").get_weights()):
        np.testing.assert_array_equal(got, want)
    assert not np.allclose(last.get_layer("head_dense").get_weights()[0],
                           source.get_layer("head_dense").get_weights()[0])
    assert temp_files(run.root) == []


def test_cache_off_trains_on_images_with_the_same_history_and_schedule(
        pretrained: tuple[Path, Path], tmp_path: Path) -> None:
    from edgecls.train.fit import train

    data, weights = pretrained
    rows, drawn = {}, {}
    for cached in (True, False):
        run = RunDir(tmp_path / f"run_{cached}")
        drawn[cached] = StringIO()
        train(tiny_config(data, run.root, weights=str(weights), epochs=3, head_epochs=2,
                          head_cache=cached), progress=drawn_progress(drawn[cached]))
        rows[cached] = history(run)
        assert run.history.read_text().splitlines()[0] == (
            "epoch,phase,loss,accuracy,val_loss,val_accuracy,val_cross_entropy,lr_start,lr_end,seconds")
    assert "head features" in drawn[True].getvalue()
    assert "head features" not in drawn[False].getvalue()
    for with_cache, on_images in zip(rows[True], rows[False]):
        assert (with_cache["epoch"], with_cache["phase"]) == (on_images["epoch"], on_images["phase"])
        for rate in ("lr_start", "lr_end"):
            assert float(with_cache[rate]) == pytest.approx(float(on_images[rate]), rel=1e-5)
    assert [row["phase"] for row in rows[True]] == ["head", "head", "finetune"]


def test_resume_inside_and_after_the_cached_head_phase(pretrained: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    import keras

    from edgecls.train.fit import train

    data, weights = pretrained
    run = RunDir(tmp_path / "run")
    config = tiny_config(data, run.root, weights=str(weights), epochs=4, head_epochs=3)
    with pytest.raises(KeyboardInterrupt):  # in the 2nd head epoch
        train(config, callbacks=[InterruptAt(epoch=1, batch=1)])
    state = json.loads(run.state.read_text())
    assert (state["epoch"], state["phase"], state["done"]) == (1, 0, False)
    steps = keras.saving.load_model(run.last_checkpoint, compile=True).optimizer.iterations.numpy()
    assert steps > 0

    with pytest.raises(KeyboardInterrupt):  # in the fine-tuning epoch
        train(config, resume=True, callbacks=[InterruptAt(epoch=0, batch=1)])
    after_head = keras.saving.load_model(run.last_checkpoint, compile=True)
    assert after_head.optimizer.iterations.numpy() == 3 * steps  # moments and steps kept
    assert [row["phase"] for row in history(run)] == ["head"] * 3

    drawn = StringIO()
    result = train(config, resume=True, progress=drawn_progress(drawn))
    assert "head features" not in drawn.getvalue()  # the head phase is finished
    assert [row["phase"] for row in history(run)] == ["head"] * 3 + ["finetune"]
    assert result.epochs == 4 and json.loads(run.state.read_text())["done"] is True


def test_cache_applies_only_to_the_head_phase_under_the_default_strategy(
        pretrained: tuple[Path, Path], tmp_path: Path) -> None:
    """Off for other phases, when switched off, with balanced sampling or mixup, past the
    memory budget, and under a non-default tf.distribute strategy (the head phase then
    trains on images)."""
    import dataclasses

    import tensorflow as tf

    from edgecls.data.split import prepare_split
    from edgecls.models import build
    from edgecls.train.feature_cache import cache_applies
    from edgecls.train.phases import Phase

    data, _ = pretrained
    config = tiny_config(data, tmp_path / "run", head_cache_views=2)
    split = prepare_split(data, tmp_path / "run")
    model = build(config.model, weights="none", include_top=False, num_classes=3, input_size=32)
    head = Phase("head", 1, 0.01)
    assert cache_applies(model, config, head, split)
    assert not cache_applies(model, config, Phase("finetune", 1, 0.001), split)
    assert not cache_applies(model, dataclasses.replace(config, head_cache=False), head, split)
    assert not cache_applies(model, dataclasses.replace(config, imbalance="sampling"), head, split)
    assert not cache_applies(model, dataclasses.replace(config, augment={"mixup": 0.2}), head, split)
    assert cache_applies(model, dataclasses.replace(config, imbalance="logit_adjustment"), head, split)
    features = (3 * len(split.items("train")) + len(split.items("val"))) * 16 * 4  # 16 channels
    assert cache_applies(model, config, head, split, memory_budget=features)
    assert not cache_applies(model, config, head, split, memory_budget=features - 1)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert not cache_applies(model, config, head, split)
