"""Which epoch a run keeps (``edgecls.train.best_epoch``): ties in val accuracy on a
small val split no longer pin the first epoch, the same rule drives early stopping,
the printed line says which epoch and why, and runs written before the rule resume."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from edgecls.rundir import RunDir
from edgecls.train.best_epoch import ACCURACY_THEN_LOSS, LEGACY_RULE, VAL_LOSS, kept_epoch_line
from edgecls.train.checkpoint import RunRecorder, TrainState
from helpers.images import write_image_folder
from helpers.runs import InterruptAt, tiny_config

# The run: val accuracy stuck at 26/29 for six epochs while the val loss falls.
TIED_ACCURACY = 26 / 29
FALLING_LOSS = [0.361, 0.355, 0.348, 0.340, 0.333, 0.327]


def _replay(tmp_path: Path, state: TrainState, patience: int = 5) -> tuple[RunRecorder, object]:
    """Feeds a RunRecorder the constructed history; the head bias holds the epoch number,
    so best.keras shows which epoch it was saved at."""
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    recorder = RunRecorder(RunDir(tmp_path / "run"), state, 0, "head", patience)
    recorder.set_model(model)
    model.stop_training = False  # as model.fit starts
    for epoch, loss in enumerate(FALLING_LOSS):
        kernel, _ = model.layers[-1].get_weights()
        model.layers[-1].set_weights([kernel, np.full(2, epoch + 1, np.float32)])
        recorder.on_epoch_begin(epoch)
        recorder.on_epoch_end(epoch, {"loss": 0.5, "accuracy": 0.75, "val_loss": loss + 0.2,
                                      "val_accuracy": TIED_ACCURACY, "val_cross_entropy": loss})
        if model.stop_training:
            break
    return recorder, model


def _kept_bias(run: RunDir) -> float:
    import keras

    return float(keras.saving.load_model(run.best_model).layers[-1].get_weights()[1][0])


@pytest.mark.parametrize("rule", [None, ACCURACY_THEN_LOSS, VAL_LOSS])  # None: the default
def test_tied_accuracy_with_falling_loss_keeps_the_later_epoch(tmp_path: Path,
                                                               rule: str | None) -> None:
    recorder, model = _replay(tmp_path, TrainState(**({"checkpoint_rule": rule} if rule else {})))
    assert not model.stop_training  # the loss kept improving: no early stop
    state = recorder.state
    assert (state.best_epoch, state.best_val_loss, state.wait) == (6, 0.327, 0)
    assert _kept_bias(recorder.run) == 6
    rows = list(csv.DictReader(io.StringIO(recorder.run.history.read_text())))
    assert [row["val_cross_entropy"] for row in rows] == [f"{x:g}" for x in FALLING_LOSS]


def test_runs_of_the_old_rule_keep_it(tmp_path: Path) -> None:
    recorder, model = _replay(tmp_path, TrainState(checkpoint_rule=LEGACY_RULE))
    assert model.stop_training and recorder.state.epoch == 6  # patience 5 after epoch 1
    assert recorder.state.best_epoch == 1 and _kept_bias(recorder.run) == 1


def _rows(accuracies: list[float], losses: list[float], head: int) -> list[dict[str, str]]:
    return [{"epoch": str(i + 1), "phase": "head" if i < head else "finetune",
             "val_accuracy": f"{a:.6g}", "val_cross_entropy": f"{loss:.6g}"}
            for i, (a, loss) in enumerate(zip(accuracies, losses))]


def test_kept_epoch_line_says_which_epoch_and_why() -> None:
    rows = _rows([TIED_ACCURACY] * 8, [0.40, 0.39, 0.37, 0.36, 0.35, 0.34, 0.327, 0.33], head=2)
    assert kept_epoch_line(rows, VAL_LOSS, 7) == (
        "kept epoch 7 (fine-tune 5): lowest val loss 0.327 (val accuracy 0.8966, "
        "tied with epoch 1)")
    rows = _rows([0.5, 0.9, 0.8], [0.6, 0.5, 0.4], head=1)
    assert kept_epoch_line(rows, VAL_LOSS, 3) == (
        "kept epoch 3 (fine-tune 2): lowest val loss 0.4 (val accuracy 0.8000; highest "
        "0.9000 at epoch 2)")
    tied = _rows([0.5, 0.9, 0.9, 0.9], [0.6, 0.5, 0.4, 0.45], head=1)
    assert kept_epoch_line(tied, ACCURACY_THEN_LOSS, 3) == (
        "kept epoch 3 (fine-tune 2): highest val accuracy 0.9000, val loss 0.4, the lowest "
        "of 3 epochs tied at that accuracy")
    old = [{k: v for k, v in row.items() if k != "val_cross_entropy"} for row in rows]
    assert kept_epoch_line(old, LEGACY_RULE, 0) == (
        "kept epoch 2 (fine-tune 1): first epoch with the highest val accuracy 0.9000")


def _to_old_format(run: RunDir) -> None:
    """Rewrites a run as edgecls wrote it before the rule existed: state.json without the
    kept epoch and rule, history without val_cross_entropy, the checkpoint compiled
    without the plain cross-entropy metric."""
    import keras

    state = json.loads(run.state.read_text())
    for key in ("best_val_loss", "best_epoch", "checkpoint_rule"):
        state.pop(key)
    run.state.write_text(json.dumps(state))
    rows = list(csv.DictReader(io.StringIO(run.history.read_text())))
    columns = [c for c in rows[0] if c != "val_cross_entropy"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    run.history.write_text(out.getvalue())
    model = keras.saving.load_model(run.last_checkpoint, compile=True)
    model.compile(optimizer=model.optimizer, loss=model.loss,
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    model.save(run.last_checkpoint)


def test_run_written_before_the_rule_resumes(tmp_path: Path) -> None:
    from edgecls.train.fit import train

    data = write_image_folder(tmp_path / "images", {"circle_r": 12, "square_g": 12})
    run = RunDir(tmp_path / "run")
    config = tiny_config(data, run.root, epochs=2, patience=5)
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[InterruptAt(epoch=1, batch=0)])
    _to_old_format(run)
    result = train(config, resume=True)
    assert result.epochs == 2
    state = json.loads(run.state.read_text())
    assert state["checkpoint_rule"] == LEGACY_RULE and state["done"]
    accuracies = [float(row["val_accuracy"]) for row in
                  csv.DictReader(io.StringIO(run.history.read_text()))]
    assert state["best_val_accuracy"] == pytest.approx(max(accuracies), abs=1e-6)
    assert result.kept.startswith("kept epoch ")
