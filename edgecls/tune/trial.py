"""One trial: sample a candidate, reuse the result of a finished trial with the same
parameters (or wait for one another worker is running, then reuse it), else measure its
signature, train it only if it meets the budget, and report its val accuracy epoch by
epoch so the pruner can stop it early.

Fidelity rises in rungs: the head on cached backbone features first (cheap: the backbone
runs once per image), then a short fine-tune; a pruned candidate is narrowed after that
and fine-tuned for ``prune_epochs``. Only the val split is read; the test split stays
untouched until the winner's final report.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgecls.errors import EdgeclsError
from edgecls.rundir import RunDir
from edgecls.train.config import TrainConfig
from edgecls.tune import steps
from edgecls.tune.budget import Budget
from edgecls.tune.latency_cache import LatencyMeter, Measurement
from edgecls.tune.space import Candidate, SearchSpace
from edgecls.tune.study import (STATE_COMPLETE, STATE_FAILED, STATE_PRUNED, OutOfTime, Pruned, Search,
                                 TrialHandle)

OVER_BUDGET = "over_budget"


@dataclass
class Fidelity:
    """Epochs of each rung, and of the winner's full training.

    Attributes:
        head_epochs: rung 1, the head on cached features (pretrained candidates).
        fine_tune_epochs: rung 2, the short fine-tune.
        scratch_epochs: a from-scratch candidate's trial epochs (one phase). It is ranked
            on the same short budget as the others, which favours pretrained candidates:
            from scratch needs far more epochs to show what it can do.
        prune_epochs: fine-tune epochs after structured pruning.
        final_epochs: the winner's full training (``TrainConfig.epochs``).
        batch_size: images per step (None: the training default).
    """

    head_epochs: int = 2
    fine_tune_epochs: int = 2
    scratch_epochs: int = 4
    prune_epochs: int = 1
    final_epochs: int = 20
    batch_size: int | None = None

    def trial_epochs(self, candidate: Candidate) -> int:
        return self.head_epochs + self.fine_tune_epochs if candidate.pretrained else self.scratch_epochs

    def final_head_epochs(self, candidate: Candidate) -> int | None:
        """The winner's head epochs on cached features (None: one phase, from scratch)."""
        return max(1, self.final_epochs // 3) if candidate.pretrained else None

    def final_estimate_s(self, candidate: Candidate, trial_s: float, epoch_s: float) -> float:
        """Seconds the winner's full training (and pruning) should take, from its trial's:
        the trial's time plus the epochs on whole images the full training adds, each as
        long as the trial's last one (``epoch_s``); the export and bench after it not included."""
        if candidate.pretrained:
            added = (self.final_epochs - self.final_head_epochs(candidate)) - self.fine_tune_epochs
        else:
            added = self.final_epochs - self.scratch_epochs
        if candidate.signature.mac_reduction > 0:
            added += max(2, self.prune_epochs) - self.prune_epochs
        return trial_s + max(0, added) * epoch_s


@dataclass
class TrialResult:
    """What one trial ended with (also stored as the trial's user attributes)."""

    number: int
    state: str  # complete | pruned | failed | over_budget
    candidate: Candidate
    measurement: Measurement | None = None
    val_accuracy: float | None = None
    run_dir: Path | None = None
    note: str | None = None
    decision: str | None = None  # the budget's: within | over | remeasured-within | remeasured-over
    repeat_of: int | None = None  # the finished trial whose result this one reuses
    train_s: float | None = None  # wall seconds of the trial's training (and pruning)
    final_estimate_s: float | None = None  # of the full training, were it the winner


def train_config(candidate: Candidate, data: Path, out: Path, epochs: int, fidelity: Fidelity,
                 base: dict[str, Any], head_epochs: int | None = None) -> Any:
    """The ``TrainConfig`` that trains ``candidate`` for ``epochs`` into ``out``."""
    values: dict[str, Any] = {**base, **candidate.train_overrides(), "data": str(data), "out": str(out),
                              "epochs": epochs, "patience": None}
    if fidelity.batch_size:
        values["batch_size"] = fidelity.batch_size
    if candidate.pretrained:
        values["head_epochs"] = head_epochs or min(fidelity.head_epochs, epochs)
    return dataclasses.replace(TrainConfig(), **values).validate()


def run_trial(search: Search, space: SearchSpace, meter: LatencyMeter, budget: Budget, data: Path,
              split_file: Path, folder: Path, fidelity: Fidelity, base: dict[str, Any],
              say: Callable[[str], None], deadline: float | None = None) -> TrialResult:
    """Runs one trial of ``search`` to its end and tells the study how it ended.

    Raises:
        OutOfTime: ``deadline`` (``time.monotonic``) passed while the trial waited for its
            twin; the trial is failed and queued again, as on Ctrl+C.
    """
    handle = search.ask()
    try:
        candidate = space.sample(handle)
        repeated = search.repeat(handle) or _after_twin(search, handle, deadline, say)
        if repeated is not None:
            return _repeated(handle, candidate, repeated)
        with search.heartbeat(handle):
            result = _run(handle, candidate, meter, budget, data, split_file, folder, fidelity, base, say)
    except (KeyboardInterrupt, OutOfTime):
        search.abandon(handle)
        raise
    _tell(search, handle, result, budget)
    return result


def _after_twin(search: Search, handle: TrialHandle, deadline: float | None,
                say: Callable[[str], None]) -> dict[str, Any] | None:
    """Waits for an earlier trial with these parameters running on another worker, then
    reuses its result (``Search.repeat``); None when there is none or it failed: this
    trial trains the candidate itself."""
    twin = search.running_twin(handle)
    if twin is None:
        return None
    say(f"trial {handle.number}: same parameters as trial {twin.number}, running on another worker: "
        "waiting for its result")
    with search.heartbeat(handle):  # a waiting worker is alive too
        finished = search.await_twin(handle, twin, deadline)
    if not finished:
        say(f"trial {handle.number}: trial {twin.number} failed or its worker stopped: running the candidate here")
        return None
    handle.set("waited_for_twin", twin.number)
    return search.repeat(handle)


def _repeated(handle: TrialHandle, candidate: Candidate, record: dict[str, Any]) -> TrialResult:
    """The result of a trial that reused a finished trial's (``Search.repeat``)."""
    state = OVER_BUDGET if record.get("over_budget") else record["state"]
    return TrialResult(handle.number, state, candidate, val_accuracy=record.get("val_accuracy"),
                       note=record.get("note"), decision=record.get("budget_decision"),
                       repeat_of=record["repeat_of"])


def _run(handle: TrialHandle, candidate: Candidate, meter: LatencyMeter, budget: Budget, data: Path,
         split_file: Path, folder: Path, fidelity: Fidelity, base: dict[str, Any],
         say: Callable[[str], None]) -> TrialResult:
    result = TrialResult(handle.number, STATE_FAILED, candidate)
    try:
        result.measurement = meter.measure(candidate.signature, budget)
    except EdgeclsError as exc:
        result.note = f"latency measurement failed: {exc}"
        return result
    figures = _figures(result.measurement, budget)
    result.decision = budget.decide(result.measurement.samples(budget.latency_key), figures[1])
    if result.decision.endswith("over"):
        result.state, result.note = OVER_BUDGET, "over budget: not trained"
        return result
    low, high = result.measurement.spread(budget.latency_key)
    say(f"trial {handle.number}: {candidate.signature.key()} ({figures[0]:.2f} ms [{low:.2f}-{high:.2f}], "
        f"{figures[1] / 1e6:.2f} MB, {result.decision}) training")
    reporter, began = _EpochReporter(handle), time.monotonic()
    try:
        result.val_accuracy, result.run_dir = _train(reporter, candidate, data, split_file,
                                                     folder / f"{handle.number:04d}", fidelity, base)
        result.state = STATE_COMPLETE
    except Pruned as stop:
        result.state, result.note = STATE_PRUNED, str(stop)
    except EdgeclsError as exc:
        result.note = f"training failed: {exc}"
    result.train_s = time.monotonic() - began
    if result.state == STATE_COMPLETE and reporter.last_epoch_s is not None:
        result.final_estimate_s = fidelity.final_estimate_s(candidate, result.train_s, reporter.last_epoch_s)
    return result


def _figures(measurement: Measurement, budget: Budget) -> tuple[float, int]:
    return measurement.latency_ms(budget.latency_key), measurement.size_bytes


def _train(reporter: _EpochReporter, candidate: Candidate, data: Path, split_file: Path, folder: Path,
           fidelity: Fidelity, base: dict[str, Any]) -> tuple[float, Path]:
    """Trains (and prunes) ``candidate`` at trial fidelity; returns its best val accuracy."""
    if folder.exists():  # a retried trial number never repeats, but a damaged folder might
        shutil.rmtree(folder)
    run = folder / "run"
    run.mkdir(parents=True)
    shutil.copy(split_file, RunDir(run).split)
    shutil.copy(RunDir(split_file.parent).labels, RunDir(run).labels)
    config = train_config(candidate, data, run, fidelity.trial_epochs(candidate), fidelity, base)
    result = steps.train_run(config, callbacks=[reporter.keras_callback()], evaluate_test=False)
    best = float(result.best_val_accuracy)
    mac = candidate.signature.mac_reduction
    if mac <= 0:
        return best, run
    pruned = folder / "pruned"
    report = steps.prune_run(run, pruned, mac, fidelity.prune_epochs, score_on="val")
    best = max(report.val_accuracy) if report.val_accuracy else report.accuracy_after  # both on val
    reporter.report(best)
    return float(best), pruned


class _EpochReporter:
    """Reports val accuracy to the trial after every epoch of every phase (one step each),
    and keeps how long the last Keras epoch took."""

    def __init__(self, handle: TrialHandle) -> None:
        self.handle, self.step = handle, 0
        self.last_epoch_s: float | None = None

    def report(self, value: float) -> None:
        self.step += 1
        self.handle.report(value, self.step)

    def keras_callback(self) -> Any:
        import keras

        reporter = self

        class _Report(keras.callbacks.Callback):
            began = time.monotonic()

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self.began = time.monotonic()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                reporter.last_epoch_s = time.monotonic() - self.began
                value = (logs or {}).get("val_accuracy")
                if value is not None:
                    reporter.report(float(value))

        return _Report()


def _tell(search: Search, handle: TrialHandle, result: TrialResult, budget: Budget) -> None:
    """Stores the result with the trial; an over-budget candidate is told as infeasible
    (its constraint is how far over it is) so the sampler learns where the budget lies."""
    candidate = result.candidate
    handle.set("signature", candidate.signature.key())
    handle.set("candidate", candidate.params())
    handle.set("note", result.note)
    if result.measurement is not None:
        latency, size = _figures(result.measurement, budget)
        low, high = result.measurement.spread(budget.latency_key)
        handle.set("latency_ms", latency)
        handle.set("latency_min_ms", low)
        handle.set("latency_max_ms", high)
        handle.set("latency_rounds", len(result.measurement.samples(budget.latency_key)))
        handle.set("budget_decision", result.decision)
        handle.set("size_bytes", size)
        handle.set("measured_on", result.measurement.target)
        handle.constrain(budget.excess(latency, size))
    if result.run_dir is not None:
        handle.set("run_dir", str(result.run_dir))
    if result.train_s is not None:
        handle.set("train_s", round(result.train_s, 1))
    if result.final_estimate_s is not None:
        handle.set("final_estimate_s", round(result.final_estimate_s, 1))
    if result.state == OVER_BUDGET:
        handle.set("over_budget", True)
        search.tell(handle, STATE_COMPLETE, 0.0)
    elif result.state == STATE_COMPLETE:
        handle.set("val_accuracy", result.val_accuracy)
        search.tell(handle, STATE_COMPLETE, result.val_accuracy)
    else:
        search.tell(handle, result.state)
