"""What both pruning methods share: the interface ``edgecls prune`` drives, the short
fine-tune, top-1 accuracy of a Keras model, and writing the pruned model as a normal run
directory that ``edgecls export`` accepts."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from edgecls.atomic import atomic_path, save_keras_model_atomic, write_text_atomic
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.errors import ConfigError
from edgecls.models.float_model import input_size, load_float_model, predict
from edgecls.rundir import RunDir

EpochHook = Callable[[int, dict], None]  # (epoch number from 1, Keras logs)


class PruningMethod(Protocol):
    """One pruning method, as its options: ``PruneConfig`` (magnitude) and
    ``StructuredConfig`` (structured channels) both are one."""

    def check(self) -> None:
        """Raises a user error for options that cannot work, before any heavy work."""

    def run(self, run_dir: Path, out_dir: Path, on_epoch: EpochHook | None = None) -> Any:
        """Prunes the run in ``run_dir`` into a new run ``out_dir``; returns the report
        (a dataclass, also written there as ``prune_report.json``)."""


def epoch_hook(on_epoch: EpochHook | None) -> Any:
    """A Keras callback forwarding (epoch number, logs) to ``on_epoch``."""
    import keras

    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: on_epoch and on_epoch(epoch + 1, dict(logs or {})))


def prepare_for_finetune(model: Any, learning_rate: Any) -> None:
    """Everything trainable except BatchNorm (small batches would wreck its statistics);
    ``learning_rate`` is a number or a Keras schedule."""
    import keras

    model.trainable = True
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def top1_accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of a Keras model on prepared uint8/float images (NaN without images)."""
    if len(labels) == 0:
        return float("nan")
    probs = predict(model, images)
    return float(np.mean(probs.argmax(axis=1) == labels))


def write_pruned_run(source: RunDir, target: RunDir, model: Any, report: Any) -> None:
    """A normal run directory: the pruned best.keras, the source's split, labels and config,
    and ``prune_report.json`` from the ``report`` dataclass."""
    target.root.mkdir(parents=True, exist_ok=True)
    for name in ("split", "labels", "config"):
        src = getattr(source, name)
        if src.is_file():
            with atomic_path(getattr(target, name)) as tmp:
                shutil.copyfile(src, tmp)
    save_keras_model_atomic(_without_optimizer(model), target.best_model)
    write_text_atomic(target.prune_report, json.dumps(asdict(report), indent=1) + "\n")


def _without_optimizer(model: Any) -> Any:
    """A copy of ``model`` with the same weights and no optimizer state (a plain model)."""
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


@dataclass
class PruningJob:
    """What every pruning method starts from: the source and target runs, the split,
    the float model, its input size and the prepared images accuracy is scored on (the
    ``scored_on`` subset: test for ``edgecls prune``, val inside ``edgecls tune``)."""

    source: RunDir
    target: RunDir
    split: Any
    model: Any
    size: tuple[int, int]
    test_images: np.ndarray
    test_labels: np.ndarray
    scored_on: str = "test"


def open_pruning_job(run_dir: Path, out_dir: Path, score_on: str = "test") -> PruningJob:
    """Loads a trained run for pruning into ``out_dir`` (which must be another folder);
    ``score_on`` is the subset whose images are loaded to score accuracy ("val" keeps the
    test split unread, as a tuning trial must)."""
    source, target = RunDir(Path(run_dir)), RunDir(Path(out_dir))
    model_path = source.require_model()
    if target.root.resolve() == source.root.resolve():
        raise ConfigError("--out must differ from the run directory",
                          "pruning writes a new run, e.g. RUN-pruned")
    target.require_room_for_run()  # not among a user's own files
    split = Split.load(source.split)
    model = load_float_model(model_path)
    size = input_size(model)
    images, labels = load_arrays(split.items(score_on), size)
    return PruningJob(source, target, split, model, size, images, labels, score_on)
