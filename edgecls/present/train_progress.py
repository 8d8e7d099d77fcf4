"""Rich progress bars for Keras training: one bar over epochs, one over the batches of
the current epoch, and a summary line per finished epoch; one bar over the batches of a
``predict`` pass (the head phase's feature cache). Into a file, only the summary lines."""

from __future__ import annotations

import time
from typing import Any

import keras
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgecls.present.progress import is_live


class RichProgress(keras.callbacks.Callback):
    """Keras callback drawing rich progress bars.

    On a console that is neither a terminal nor a notebook (``edgecls train ... > train.log 2>&1``) it draws
    no bars, which rich would leave in the file as blank lines: only the summary lines,
    one per epoch and one per feature pass.

    Args:
        phase: name of the training phase, shown in the bars.
        first_epoch: global number of the phase's first epoch (for the summary lines).
        console: where to draw (default: stderr).
    """

    def __init__(self, phase: str, first_epoch: int = 1, console: Console | None = None) -> None:
        super().__init__()
        self.phase = phase
        self.first_epoch = first_epoch
        self.console = console or Console(stderr=True)
        self.live = is_live(self.console)
        self._progress: Progress | None = None
        self._epochs_task: Any = None
        self._batches_task: Any = None
        self._predict_started: float | None = None
        self._predicted_batches = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.live:
            return
        self._progress = _bars(self.console, TextColumn("{task.fields[metrics]}"))
        epochs = self.params.get("epochs") or 0
        self._epochs_task = self._progress.add_task(f"{self.phase} epochs", total=epochs,
                                                    metrics="")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._progress is None:
            return
        self._progress.update(self._epochs_task, completed=epoch)
        if self._batches_task is not None:
            self._progress.remove_task(self._batches_task)
        self._batches_task = self._progress.add_task(
            f"epoch {self.first_epoch + epoch}", total=self.params.get("steps"), metrics="")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._batches_task, completed=batch + 1,
                                  metrics=_format(logs, ("loss", "accuracy")))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._epochs_task, completed=epoch + 1)
        self.console.print(f"{self.phase} epoch {self.first_epoch + epoch}: "
                           f"{_format(logs, ('loss', 'accuracy', 'val_loss', 'val_accuracy'))}",
                           highlight=False, soft_wrap=True)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._predict_started, self._predicted_batches = time.perf_counter(), 0
        if self.live:
            self._progress = _bars(self.console)
            self._batches_task = self._progress.add_task(self.phase, total=self.params.get("steps"))

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._predicted_batches = batch + 1
        if self._progress is not None:
            self._progress.update(self._batches_task, completed=batch + 1)

    def on_predict_end(self, logs: dict | None = None) -> None:
        if self._predict_started is None:  # called twice: by Keras, then by the caller
            return
        self.on_train_end()
        self.console.print(f"{self.phase}: {self._predicted_batches} batches in "
                           f"{time.perf_counter() - self._predict_started:.1f} s",
                           highlight=False, soft_wrap=True)
        self._predict_started = None

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._batches_task = None


def _bars(console: Console, *extra_columns: Any) -> Progress:
    """Started, transient progress bars: description, bar, m/n, elapsed, remaining."""
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), *extra_columns,
                        console=console, transient=True)
    progress.start()
    return progress


def _format(logs: dict | None, keys: tuple[str, ...]) -> str:
    logs = logs or {}
    return "  ".join(f"{k} {float(logs[k]):.4f}" for k in keys if k in logs)
