"""Resumable training: after every epoch the run directory gets a history row, the best
model when the epoch beats the kept one (``edgecls.train.best_epoch``), the last model,
and finally ``state.json``.

``state.json`` is written last and atomically, so it always describes a complete
checkpoint: a run killed at any moment resumes from its last finished epoch and loses
at most the epoch in progress.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgecls.atomic import save_keras_model_atomic, write_text_atomic
from edgecls.errors import EdgeclsError
from edgecls.rundir import RunDir
from edgecls.train.best_epoch import DEFAULT_RULE, LEGACY_RULE, EpochScore, improves, score_of

STATE_SCHEMA_VERSION = 1
# lr_start / lr_end: the phase's learning rate at the epoch's first and last step (its
# schedule's base rate: the head's, under layer-wise decay). Runs of edgecls before them
# wrote one ``lr`` column, the rate after the epoch's last step; read_history reads it as lr_end.
# val_loss is the training loss (label smoothing, logit adjustment) on the val split;
# val_cross_entropy the plain cross-entropy the kept epoch is chosen by (empty in older runs).
HISTORY_COLUMNS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy",
                   "val_cross_entropy", "lr_start", "lr_end", "seconds")
_LOGGED_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "val_cross_entropy")


@dataclass
class TrainState:
    """Where a run stands after its last finished epoch.

    Attributes:
        epoch: epochs finished in total (all phases).
        phase: index of the phase the last epoch belonged to.
        phase_epoch: epochs finished within that phase.
        stopped_early: that phase was stopped by early stopping.
        best_val_accuracy: val accuracy of the kept epoch (the one ``best.keras`` has).
        wait: epochs since the last improvement, for early stopping.
        done: every phase is finished.
        best_val_loss: plain val cross-entropy of the kept epoch (None: not measured).
        best_epoch: the kept epoch (1-based; 0 in runs written before it was recorded).
        checkpoint_rule: how the kept epoch is chosen (``edgecls.train.best_epoch``); a
            run keeps the rule it started with (``val_accuracy`` for runs written
            before the choice).
    """

    epoch: int = 0
    phase: int = 0
    phase_epoch: int = 0
    stopped_early: bool = False
    best_val_accuracy: float = -1.0
    wait: int = 0
    done: bool = False
    schema_version: int = STATE_SCHEMA_VERSION
    best_val_loss: float | None = None
    best_epoch: int = 0
    checkpoint_rule: str = DEFAULT_RULE

    def kept_score(self) -> EpochScore | None:
        """The kept epoch's score (None before the first epoch)."""
        if self.best_val_accuracy < 0:
            return None
        loss = float("nan") if self.best_val_loss is None else self.best_val_loss
        return EpochScore(self.best_val_accuracy, loss)


def load_state(run: RunDir) -> TrainState | None:
    """The state of the last checkpoint, or None for a run that has none.

    Resuming starts here, so the partial files of a save that was killed go first.
    """
    remove_partial_files(run)
    if not (run.state.is_file() and run.last_checkpoint.is_file()):
        return None
    try:
        data = json.loads(run.state.read_text())
        data.setdefault("checkpoint_rule", LEGACY_RULE)  # written before the rule was recorded
        return TrainState(**data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise EdgeclsError(f"checkpoint state {run.state} is unreadable ({exc})",
                           "start a new run with a fresh --out directory") from None


def remove_partial_files(run: RunDir) -> list[Path]:
    """Deletes what killed atomic saves left in the run: ``.X.*.partial.keras`` (Keras
    models) and ``.X.*.tmp`` (state, history, split). Returns the removed paths."""
    removed = []
    for folder in (run.root, run.checkpoints):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") and path.name.endswith((".partial.keras", ".tmp")):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def save_state(run: RunDir, state: TrainState) -> None:
    """Writes ``state.json`` atomically (the commit point of a checkpoint)."""
    write_text_atomic(run.state, json.dumps(asdict(state), indent=1))


def read_history(run: RunDir) -> list[dict[str, str]]:
    """The rows of ``history.csv`` (empty list without one), with ``lr_start`` and
    ``lr_end`` also in rows of older runs (their ``lr`` as ``lr_end``, no ``lr_start``)."""
    if not run.history.is_file():
        return []
    rows = list(csv.DictReader(io.StringIO(run.history.read_text())))
    for row in rows:
        if "lr_end" not in row:
            row["lr_start"], row["lr_end"] = "", row.pop("lr", "") or ""
    return rows


def write_history(run: RunDir, rows: list[dict[str, Any]]) -> None:
    """Rewrites ``history.csv`` atomically with ``rows``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(run.history, out.getvalue())


def _keras_callback_base() -> type:
    import keras

    return keras.callbacks.Callback


class RunRecorder(_keras_callback_base()):  # type: ignore[misc]
    """Keras callback: history row, best and last checkpoints, state, early stopping.

    Args:
        run: the run directory.
        state: state to continue from (updated in place).
        phase_index: index of the phase being trained.
        phase_name: its name, written into the history.
        patience: stop the phase after this many epochs without improvement (0: never).
        saved_model: the model the checkpoints hold (default: the one being trained;
            the full model when a part of it trains, see ``feature_cache``).
        schedule: the phase's learning-rate schedule (a function of the optimizer's
            step), for the history's ``lr_start`` and ``lr_end``; None: the optimizer's
            learning rate is constant.
    """

    def __init__(self, run: RunDir, state: TrainState, phase_index: int, phase_name: str,
                 patience: int, saved_model: Any = None, schedule: Any = None) -> None:
        super().__init__()
        self.run = run
        self.state = state
        self.phase_index = phase_index
        self.phase_name = phase_name
        self.patience = patience
        self.saved_model = saved_model
        self.schedule = schedule
        self.history = read_history(run)[: state.epoch]
        self._started = 0.0
        self._first_step = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        import time

        self._started = time.perf_counter()
        self._first_step = _optimizer_step(self.model)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import time

        logs = logs or {}
        state = self.state
        state.epoch += 1
        state.phase, state.phase_epoch = self.phase_index, epoch + 1
        self.history.append({"epoch": state.epoch, "phase": self.phase_name,
                             **{k: _fmt(logs.get(k)) for k in _LOGGED_COLUMNS},
                             "lr_start": _fmt(self._rate_at(self._first_step)),
                             "lr_end": _fmt(self._rate_at(max(self._first_step,
                                                              _optimizer_step(self.model) - 1))),
                             "seconds": f"{time.perf_counter() - self._started:.2f}"})
        write_history(self.run, self.history)
        score = score_of(logs)
        if improves(state.checkpoint_rule, score, state.kept_score()):
            state.best_val_accuracy, state.best_epoch, state.wait = score.accuracy, state.epoch, 0
            state.best_val_loss = None if math.isnan(score.loss) else score.loss
            with averaged_weights(self.model):  # the weights validation has just scored
                save_keras_model_atomic(self.saved_model or self.model, self.run.best_model)
        else:
            state.wait += 1
        if self.patience and state.wait >= self.patience:
            self.model.stop_training = True
        state.stopped_early = bool(self.model.stop_training)
        save_keras_model_atomic(self.saved_model or self.model, self.run.last_checkpoint)
        save_state(self.run, state)

    def _rate_at(self, step: int) -> float | None:
        """The learning rate of the optimizer's step ``step`` (counted from 0)."""
        if self.schedule is not None:
            return _as_float(self.schedule(step))
        optimizer = getattr(self.model, "optimizer", None)
        return None if optimizer is None else _as_float(optimizer.learning_rate)


@contextmanager
def averaged_weights(model: Any) -> Iterator[None]:
    """Within the block, ``model`` holds its optimizer's moving average of the weights
    (``use_ema=True``) instead of the trained ones; a no-op without EMA.

    The checkpoint of the last epoch keeps the trained weights and the optimizer (with
    the averages): resuming continues both exactly.
    """
    optimizer = getattr(model, "optimizer", None)
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or not averages:
        yield
        return
    _swap(optimizer._trainable_variables, averages)  # the pairing keras' SwapEMAWeights uses
    try:
        yield
    finally:
        _swap(optimizer._trainable_variables, averages)


def _swap(variables: list[Any], averages: list[Any]) -> None:
    import keras

    for variable, average in zip(variables, averages):
        trained = keras.ops.convert_to_numpy(variable)
        variable.assign(average)
        average.assign(trained)


def _optimizer_step(model: Any) -> int:
    """Steps the model's optimizer has taken (0 without one)."""
    optimizer = getattr(model, "optimizer", None)
    return 0 if optimizer is None else int(optimizer.iterations.numpy())


def _as_float(value: Any) -> float:
    return float(value.numpy() if hasattr(value, "numpy") else value)


def _fmt(value: Any) -> str:
    return "" if value is None else f"{float(value):.6g}"
