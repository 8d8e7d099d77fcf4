"""The training recipe's options: class-balanced sampling, logit adjustment, mixup and
cutmix, RandAugment, EMA of the weights (validated, in best.keras, resumed) and the
image size chosen from the data. Tiny CNN and generated images (tests/helpers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgecls.data.augment import AugmentConfig
from edgecls.errors import ConfigError
from edgecls.rundir import RunDir
from edgecls.train.config import TrainConfig
from helpers.images import write_image_folder
from helpers.runs import InterruptAt, tiny_config


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two classes, 48 and 12 generated 32 px images."""
    root = tmp_path_factory.mktemp("skewed")
    return write_image_folder(root / "images", {"circle_r": 48, "square_g": 12})


def test_balanced_sampling_draws_classes_evenly(skewed: Path, tmp_path: Path) -> None:
    from edgecls.data.pipeline import make_dataset
    from edgecls.data.split import prepare_split

    items = prepare_split(skewed, tmp_path / "run").items("train")
    rare_share = np.mean([label == 1 for _, label in items])
    assert rare_share < 0.25
    ds = make_dataset(items, (32, 32), 10, training=True, seed=3, balanced=True,
                      augment=AugmentConfig(enabled=False))
    labels = np.concatenate([np.concatenate([y.numpy() for _, y in ds]) for _ in range(8)])
    assert len(labels) == 8 * len(items)  # an epoch keeps its length
    assert 0.38 < np.mean(labels == 1) < 0.62  # ~380 draws: 4.5 standard deviations of a fair coin
    plain = make_dataset(items, (32, 32), 10, training=True, seed=3,
                         augment=AugmentConfig(enabled=False))
    assert np.mean(np.concatenate([y.numpy() for _, y in plain]) == 1) == pytest.approx(rare_share)


def test_logit_adjustment_shifts_the_loss_by_the_class_prior() -> None:
    import keras

    from edgecls.train.losses import LogitAdjustedCrossentropy, class_prior, make_loss

    prior = class_prior([0, 0, 0, 1], 3)  # class 2 has no image: counted as one
    np.testing.assert_allclose(prior, [0.6, 0.2, 0.2])
    loss = make_loss(0.0, prior)
    uniform = np.full((2, 3), 1 / 3, dtype="float32")
    frequent, rare = np.eye(3, dtype="float32")[[0], :], np.eye(3, dtype="float32")[[1], :]
    # the same uncertain prediction costs more on the rare class than on the frequent one
    assert float(loss(rare, uniform[:1])) > float(loss(frequent, uniform[:1]))
    plain = make_loss(0.0, None)
    assert float(plain(rare, uniform[:1])) == pytest.approx(float(plain(frequent, uniform[:1])))
    probs = np.array([[0.7, 0.2, 0.1]], dtype="float32")
    logits = np.log(probs) + np.log(prior)
    expected = -np.log(np.exp(logits[0, 1]) / np.exp(logits).sum())
    assert float(loss(rare, probs)) == pytest.approx(expected, rel=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, LogitAdjustedCrossentropy)
    assert float(restored(rare, probs)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("strengths", [{"mixup": 0.4}, {"cutmix": 1.0},
                                       {"mixup": 0.4, "cutmix": 1.0}])
def test_mixing_blends_images_and_labels(strengths: dict[str, float]) -> None:
    import tensorflow as tf

    from edgecls.data.augment import build_mixing

    mix = build_mixing(AugmentConfig(**strengths), seed=1)
    images = tf.constant(np.repeat(np.arange(8, dtype="float32") * 30, 8 * 8 * 3)
                         .reshape(8, 8, 8, 3))
    labels = tf.one_hot(np.arange(8) % 4, 4)
    mixed_images, mixed_labels = (t.numpy() for t in mix(images, labels))
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, rtol=1e-5)
    assert np.sum(mixed_labels.max(axis=1) < 0.999) >= 2  # some rows are blends of two classes
    assert mixed_images.shape == images.shape and not np.array_equal(mixed_images, images.numpy())
    assert build_mixing(AugmentConfig()) is None


def test_randaugment_changes_images_within_range() -> None:
    import tensorflow as tf

    from edgecls.data.augment import build_augmentation

    layers = build_augmentation(AugmentConfig(flip=False, rotation=0, zoom=0, brightness=0,
                                              contrast=0, randaugment=0.8), seed=2)
    images = tf.random.uniform((4, 32, 32, 3), 0, 255, seed=1)
    out = layers(images, training=True).numpy()
    assert out.shape == (4, 32, 32, 3) and not np.allclose(out, images.numpy())
    assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3


@pytest.mark.parametrize("values, field", [
    ({"imbalance": "oversample"}, "imbalance"), ({"ema": 1.0}, "ema"),
    ({"augment": {"randaugment": 2.0}}, "randaugment"), ({"augment": {"mixup": -1}}, "mixup"),
    ({"augment": {"mix_up": 0.2}}, "mix_up")])
def test_invalid_recipe_options(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**values).validate()


def test_image_size_follows_the_data(tmp_path: Path) -> None:
    from edgecls.data.resolution import suggest_image_size

    def folder(name: str, size: int, count: int = 3) -> list[Path]:
        root = write_image_folder(tmp_path / name, {"a": count}, size=size)
        return sorted(root.rglob("*.png"))

    assert suggest_image_size(folder("small", 32)) == 128  # never below the floor
    assert suggest_image_size(folder("mid", 170)) == 160  # median side, multiple of 32
    assert suggest_image_size(folder("large", 400)) == 224  # never above the ceiling
    assert suggest_image_size([tmp_path / "missing.jpg"]) == 224


def _weights_by_name(model: Any, name: str) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_layer(name).get_weights()]


class _RecordAverages:
    """Callback after the recorder: the head's trained and averaged kernel per epoch."""

    def __new__(cls):
        import keras

        class _Record(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.trained: list[np.ndarray] = []
                self.averaged: list[np.ndarray] = []

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                optimizer = self.model.optimizer
                index = next(i for i, v in enumerate(optimizer._trainable_variables)
                             if v.path.startswith("head_dense") and "kernel" in v.path)
                self.trained.append(np.asarray(optimizer._trainable_variables[index]))
                self.averaged.append(np.asarray(optimizer._model_variables_moving_average[index]))

        return _Record()


def test_ema_weights_are_validated_and_saved_as_best(skewed: Path, tmp_path: Path) -> None:
    import keras

    from edgecls.train.fit import train

    record = _RecordAverages()
    train(tiny_config(skewed, tmp_path / "run", epochs=3, ema=0.9, imbalance="sampling"),
          callbacks=[record])
    run = RunDir(tmp_path / "run")
    accuracies = [float(row.split(",")[5]) for row in run.history.read_text().splitlines()[1:]]
    best_epoch = json.loads(run.state.read_text())["best_epoch"] - 1  # the kept epoch
    best = keras.saving.load_model(run.best_model)
    kernel = _weights_by_name(best, "head_dense")[0]
    np.testing.assert_allclose(kernel, record.averaged[best_epoch], rtol=1e-6)
    assert not np.allclose(kernel, record.trained[best_epoch])
    scored = best.evaluate(*_val_arrays(run), verbose=0, return_dict=True)["accuracy"]
    assert scored == pytest.approx(accuracies[best_epoch], abs=1e-6)


def _val_arrays(run: RunDir) -> tuple[np.ndarray, np.ndarray]:
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split

    split = Split.load(run.split)
    images, labels = load_arrays(split.items("val"), (32, 32))
    return images.astype("float32"), np.eye(len(split.labels), dtype="float32")[labels]


def test_resume_keeps_ema_and_optimizer_state(skewed: Path, tmp_path: Path) -> None:
    """Also the logit-adjusted loss and mixup: the checkpoint reloads and trains on."""
    import keras

    from edgecls.train.fit import train

    run = RunDir(tmp_path / "run")
    config = tiny_config(skewed, run.root, epochs=2, ema=0.9, imbalance="logit_adjustment",
                         augment={"mixup": 0.2})
    record = _RecordAverages()
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[record, InterruptAt(epoch=1, batch=1)])
    saved = keras.saving.load_model(run.last_checkpoint, compile=True)
    steps = int(saved.optimizer.iterations.numpy())
    assert saved.optimizer.use_ema and steps > 0
    index = next(i for i, v in enumerate(saved.optimizer._trainable_variables)
                 if v.path.startswith("head_dense") and "kernel" in v.path)
    np.testing.assert_allclose(saved.optimizer._model_variables_moving_average[index],
                               record.averaged[0], rtol=1e-6)
    np.testing.assert_allclose(_weights_by_name(saved, "head_dense")[0], record.trained[0],
                               rtol=1e-6)
    assert train(config, resume=True).epochs == 2
    resumed = keras.saving.load_model(run.last_checkpoint, compile=True)
    assert int(resumed.optimizer.iterations.numpy()) == 2 * steps
    assert json.loads(run.state.read_text())["done"] is True


def test_saved_runs_with_the_older_class_weights_switch_still_load() -> None:
    assert TrainConfig(class_weights=False).validate().imbalance_method() == "none"
    assert TrainConfig(class_weights=False, imbalance="sampling").imbalance_method() == "sampling"
    from edgecls.train.config import DEFAULT_IMBALANCE

    assert TrainConfig().imbalance_method() == DEFAULT_IMBALANCE == "logit_adjustment"


def test_learning_rates_per_phase() -> None:
    from edgecls.train.config import FINE_TUNE_LR, HEAD_LR, SCRATCH_LR
    from edgecls.train.phases import plan_phases

    assert [p.lr for p in plan_phases(TrainConfig(epochs=6), pretrained=False)] == [SCRATCH_LR]
    assert [(p.name, p.epochs, p.lr) for p in plan_phases(TrainConfig(epochs=6), pretrained=True)] \
        == [("head", 2, HEAD_LR), ("finetune", 4, FINE_TUNE_LR)]
    given = plan_phases(TrainConfig(epochs=6, lr=0.02), pretrained=True)
    assert [p.lr for p in given] == [0.02, pytest.approx(0.002)]
    assert plan_phases(TrainConfig(epochs=6, fine_tune_lr=5e-5), True)[1].lr == 5e-5
