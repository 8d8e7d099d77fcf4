"""The training loop: split, datasets, model, phases, checkpoints, final evaluation.

``train(config)`` is what ``edgecls train`` calls. A run directory is filled as laid out
in ``edgecls.rundir``; ``resume=True`` continues it from its last finished epoch with the
split it already has. Several devices or machines train through tf.distribute
(``edgecls.train.distribute``); only the chief writes the run directory.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.config import from_dict, save_config
from edgecls.data.augment import AugmentConfig, build_mixing
from edgecls.data.pipeline import make_dataset
from edgecls.data.resolution import explain_image_size
from edgecls.data.split import SUBSETS, Split, prepare_split
from edgecls.errors import ConfigError, EdgeclsError
from edgecls.models import MODELS, build, list_models
from edgecls.models.float_model import build_for_fit, load_float_model
from edgecls.models.weights import parse_weights
from edgecls.rundir import RunDir
from edgecls.train.best_epoch import LOSS_METRIC, kept_epoch_line
from edgecls.train.checkpoint import (RunRecorder, TrainState, load_state, read_history,
                                      save_state)
from edgecls.train.config import TrainConfig
from edgecls.train.distribute import (
    Placement,
    check_workers_agree,
    fault_backup,
    lost_worker_errors,
    make_strategy,
    moving_statistics_sync,
    shard_by_data,
    worker_run_root,
)
from edgecls.train.evaluate import evaluate_run
from edgecls.train.feature_cache import cache_applies, fit_head_on_cache
from edgecls.train.init_from import apply_init_from, carry_head
from edgecls.train.model_choice import resolve_model_choice
from edgecls.train.losses import class_prior, make_loss
from edgecls.train.optimizer import make_optimizer
from edgecls.train.phases import Phase, plan_phases, set_trainable

log = logging.getLogger(__name__)

ProgressBar = Callable[[str, int], Any]  # (phase name, first epoch number) -> Keras callback


@dataclass
class TrainResult:
    """What a finished ``train`` call reports."""

    run_dir: Path
    epochs: int
    best_val_accuracy: float
    test_metrics: dict[str, Any] | None
    chief: bool = True  # False on the other workers of a cluster (they write no run)
    placement: Placement = Placement("default", 1)
    kept: str = ""  # which epoch best.keras holds and why (``best_epoch.kept_epoch_line``)


def train(config: TrainConfig, resume: bool = False, progress: ProgressBar | None = None,
          callbacks: Sequence[Any] = (), on_split: Callable[[Split], None] | None = None,
          on_input_size: Callable[[int, str], None] | None = None,
          evaluate_test: bool = True) -> TrainResult:
    """Trains (or resumes) one run and evaluates its best model on the test split.

    Args:
        config: the training configuration (``config.out`` is the run dir); an unset
            model or weights is resolved by ``model_choice.resolve_model_choice`` (a
            missing ``pretrained`` extra is logged as a warning) and saved resolved.
        resume: continue the run in ``config.out`` from its last finished epoch.
        progress: makes the Keras callback that draws one phase's progress, from the
            phase name and its first epoch number (the CLI's ``RichProgress``); None
            draws nothing.
        callbacks: extra Keras callbacks (called after the checkpointing one).
        on_split: called with the run's split once it is made or loaded, before training
            (the CLI prints its counts and the data warnings in its notes).
        on_input_size: called with the input side and where it came from (the data's
            median shorter side, or ``as configured``), before the model is built.
        evaluate_test: False leaves the test split untouched (``edgecls tune`` ranks its
            trials on val only); the result then has no ``test_metrics``.

    Raises:
        EdgeclsError: bad data, model, weights or options; a run that exists already.
    """
    if not resume:
        config = apply_init_from(config)
    config, choice = resolve_model_choice(config.validate())
    if choice.warning:
        log.warning("%s", choice.warning)
    pretrained = _check_model_choice(config)
    if not config.out:
        raise ConfigError("no run directory given", "pass --out RUN")
    strategy, placement = make_strategy()  # first: a cluster waits here for all workers
    run = _run_dir(config, resume, placement)
    _seed(config)
    state = (load_state(run) if resume else None) or TrainState()
    split = _split(config, run, resume)
    if on_split is not None and placement.is_chief:
        on_split(split)
    config, size_source = _resolved(config, split)
    if on_input_size is not None and placement.is_chief:
        on_input_size(config.img_size, size_source)
    with lost_worker_errors(placement):
        if placement.kind == "multi_worker":
            check_workers_agree(strategy, config, split, state, run)
        _train_phases(strategy, placement, config, run, state, split, pretrained, progress, callbacks)
    state.done = True
    save_state(run, state)
    if not placement.is_chief:
        shutil.rmtree(run.root, ignore_errors=True)
        return TrainResult(Path(config.out), state.epoch, state.best_val_accuracy, None,
                           chief=False, placement=placement)
    kept = kept_epoch_line(read_history(run), state.checkpoint_rule, state.best_epoch)
    test_metrics = _final_evaluation(run, split, config) if evaluate_test else None
    return TrainResult(run.root, state.epoch, state.best_val_accuracy, test_metrics, placement=placement,
                       kept=kept)


def _train_phases(strategy: Any, placement: Placement, config: TrainConfig, run: RunDir,
                  state: TrainState, split: Split, pretrained: bool, progress: ProgressBar | None,
                  callbacks: Sequence[Any]) -> None:
    """Builds or loads the model under ``strategy`` and fits every unfinished phase."""
    with strategy.scope():
        model = _initial_model(config, run, state, split.labels)
    save_config(config, run.config)
    image_size = (config.img_size, config.img_size)
    train_ds, steps = split_dataset(split, "train", image_size, config, training=True)
    val_ds, _ = split_dataset(split, "val", image_size, config, training=False)
    if placement.kind == "multi_worker":
        train_ds, val_ds = shard_by_data(train_ds), shard_by_data(val_ds)
    class_weight = _class_weights(split) if config.imbalance_method() == "class_weights" else None
    prior = (class_prior([label for _, label in split.items("train")], len(split.labels))
             if config.imbalance_method() == "logit_adjustment" else None)
    with strategy.scope():
        for index, phase in enumerate(plan_phases(config, pretrained)):
            if _phase_done(state, index, phase):
                continue
            schedule = _schedule(phase, steps)
            initial_epoch = _prepare_phase(model, state, index, phase, schedule, config, prior)
            recorder = RunRecorder(run, state, index, phase.name, config.patience or 0,
                                   saved_model=model, schedule=schedule)
            replicas = [moving_statistics_sync(strategy), fault_backup(run, state, index)] \
                if placement.distributed else []
            bar = progress(phase.name, state.epoch - initial_epoch + 1) if progress else None
            phase_callbacks = [*_ema_callbacks(config), recorder, *replicas,
                               *([bar] if bar else []), *callbacks]
            if cache_applies(model, config, phase, split):  # never under a distributed strategy
                _fit_on_cache(model, split, config, phase, initial_epoch, class_weight,
                              phase_callbacks, progress, bar)
            else:
                _fit(model, train_ds, val_ds, phase, initial_epoch, class_weight,
                     phase_callbacks, bar)


def _check_model_choice(config: TrainConfig) -> bool:
    """Fails fast on an unknown model, option or weights file; True for pretrained weights."""
    list_models()
    accepted = inspect.signature(MODELS.get(config.model)).parameters
    for option in config.model_options():
        if option not in accepted:
            raise ConfigError(f"model {config.model!r} has no option {option!r}",
                              "drop it, or pass a --model that has it (alpha is the MobileNet "
                              "width multiplier, e.g. --model mobilenet_v3_small)")
    return parse_weights(config.weights) is not None


def _seed(config: TrainConfig) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras (initial weights, dropout) from
    ``config.seed``; with ``config.deterministic`` also turns on op determinism, which
    TensorFlow keeps for the rest of the process (it has no public switch back)."""
    import keras

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _run_dir(config: TrainConfig, resume: bool, placement: Placement) -> RunDir:
    """The directory this process writes: the run on the chief, else the worker's scratch
    copy (a fresh one for a new run; a missing one on resume is caught when the workers
    compare their states)."""
    run = RunDir(worker_run_root(str(config.out), placement.cluster))
    if not placement.is_chief:
        if not resume:
            shutil.rmtree(run.root, ignore_errors=True)
        run.root.mkdir(parents=True, exist_ok=True)
        return run
    if resume and not run.config.is_file():
        raise EdgeclsError(f"{run.root} holds no training run to resume",
                           "start one without --resume, or pass the --out of an earlier run")
    if not resume:
        run.require_room_for_run()
    if not resume and any(p.is_file() for p in (run.config, run.state, run.best_model)):
        raise EdgeclsError(f"{run.root} already holds a training run",
                           "continue it with --resume, or pass a new --out directory")
    return run


def _split(config: TrainConfig, run: RunDir, resume: bool) -> Split:
    """The run's split: created from ``config.data``, or the one the run already has."""
    if not run.split.is_file() and not config.data:
        raise ConfigError("no dataset given", "pass --data DIR (a folder with one subfolder per class)")
    if run.split.is_file() and config.data and not resume:
        existing = Split.load(run.split).root
        if existing.resolve() != Path(config.data).resolve():
            raise EdgeclsError(f"{run.root} already holds the split of another dataset ({existing})",
                               "pass a new --out directory")
    salt = config.seed if config.split_salt is None else config.split_salt
    split = prepare_split(config.data or "", run.root, tuple(config.split), salt)
    if len(split.labels) < 2:
        raise EdgeclsError(f"the dataset has a single class ({split.labels[0]})",
                           "a classifier needs at least two class folders")
    return split


def _resolved(config: TrainConfig, split: Split) -> tuple[TrainConfig, str]:
    """``config`` with the defaults that depend on the data filled in (the image size),
    and where the image size came from."""
    if config.img_size is not None:
        return config, "as configured"
    paths = [path for subset in SUBSETS for path, _ in split.items(subset)]
    size, source = explain_image_size(paths)
    return dataclasses.replace(config, img_size=size), source


def _augment_config(config: TrainConfig) -> AugmentConfig:
    return from_dict(AugmentConfig, config.augment or {}, source="augment").validate()


def split_dataset(split: Any, subset: str, image_size: tuple[int, int], config: TrainConfig,
             training: bool) -> tuple[Any, int]:
    """A tf.data dataset with one-hot labels (for label smoothing and mixing) and its
    step count."""
    import tensorflow as tf

    items = split.items(subset)
    augment = _augment_config(config)
    ds = make_dataset(items, image_size, config.batch_size, training=training,
                      augment=augment, seed=config.seed,
                      balanced=training and config.imbalance_method() == "sampling")
    classes = len(split.labels)
    ds = ds.map(lambda x, y: (x, tf.one_hot(y, classes)), num_parallel_calls=tf.data.AUTOTUNE)
    mixing = build_mixing(augment, config.seed) if training else None
    if mixing is not None:
        ds = ds.map(mixing, num_parallel_calls=tf.data.AUTOTUNE)
    return ds, math.ceil(len(items) / config.batch_size)


def _class_weights(split: Any) -> dict[int, float]:
    """Inverse-frequency weights with mean 1 over the training images."""
    labels = np.array([label for _, label in split.items("train")])
    counts = np.bincount(labels, minlength=len(split.labels)).astype(float)
    weights = np.divide(len(labels), len(counts) * counts, out=np.zeros_like(counts),
                        where=counts > 0)
    return {i: float(w) for i, w in enumerate(weights)}


def _initial_model(config: TrainConfig, run: RunDir, state: TrainState, labels: list[str]) -> Any:
    """The last checkpoint when resuming, else a new model with the chosen weights (and,
    with ``init_from``, the earlier run's head for the classes it knows)."""
    if state.epoch > 0:
        model = load_float_model(run.last_checkpoint, compile=True)  # keeps the optimizer
        model.jit_compile = config.jit_compile  # not part of the saved compile config
        return model
    model = build(config.model, weights=config.weights, include_top=False,
                  num_classes=len(labels), input_size=config.img_size, **config.model_options())
    if config.init_from:
        carry_head(model, RunDir(Path(config.init_from)), labels)
    return model


def _phase_done(state: TrainState, index: int, phase: Phase) -> bool:
    if index != state.phase:
        return index < state.phase
    return state.epoch > 0 and (state.stopped_early or state.phase_epoch >= phase.epochs)


def _prepare_phase(model: Any, state: TrainState, index: int, phase: Phase, schedule: Any,
                   config: TrainConfig, prior: np.ndarray | None = None) -> int:
    """Sets trainable layers and the optimizer with the learning-rate ``schedule``;
    returns the phase's first epoch index."""
    if state.epoch > 0 and index == state.phase:
        model.optimizer.learning_rate = schedule  # keeps its moments and step count
        return state.phase_epoch
    import keras

    set_trainable(model, phase, config.fine_tune_fraction, config.bn_momentum)
    model.compile(
        optimizer=make_optimizer(model, phase, config, schedule),
        loss=make_loss(config.label_smoothing, prior),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                 keras.metrics.CategoricalCrossentropy(name=LOSS_METRIC)],
        jit_compile=config.jit_compile,
    )
    state.phase, state.phase_epoch, state.stopped_early, state.wait = index, 0, False, 0
    return 0


def _ema_callbacks(config: TrainConfig) -> list[Any]:
    """With EMA, validation (hence the choice of ``best.keras``) sees the averaged weights."""
    if not config.ema:
        return []
    import keras

    return [keras.callbacks.SwapEMAWeights(swap_on_epoch=False)]


def _schedule(phase: Phase, steps: int) -> Any:
    import keras

    return keras.optimizers.schedules.CosineDecay(phase.lr, decay_steps=max(1, steps * phase.epochs),
                                                  alpha=0.01)


def _fit(model: Any, train_ds: Any, val_ds: Any, phase: Phase, initial_epoch: int,
         class_weight: dict[int, float] | None, callbacks: list[Any], bar: Any | None) -> None:
    build_for_fit(model, train_ds)
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=phase.epochs,
                  initial_epoch=initial_epoch, class_weight=class_weight,
                  callbacks=callbacks, shuffle=False, verbose=0)
    finally:
        # BackupAndRestore leaves the epoch it restored on the model, where it would
        # override the next phase's initial epoch.
        model._initial_epoch = None
        if bar is not None:  # stop live progress bars when interrupted
            bar.on_train_end()


def _fit_on_cache(model: Any, split: Any, config: TrainConfig, phase: Phase, initial_epoch: int,
                  class_weight: dict[int, float] | None, callbacks: list[Any],
                  progress: ProgressBar | None, bar: Any | None) -> None:
    try:
        fit_head_on_cache(model, split, config, phase, initial_epoch, class_weight, callbacks,
                          progress)
    finally:
        if bar is not None:
            bar.on_train_end()


def _final_evaluation(run: RunDir, split: Any, config: TrainConfig) -> dict[str, Any] | None:
    if not split.items("test"):
        return None
    return evaluate_run(run.root, "test", top_k=config.top_k, batch_size=config.batch_size)
