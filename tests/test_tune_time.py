"""`tune --time` covers the winner's full training: the search keeps the time it should take."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgecls.tune.space import Candidate, Signature
from edgecls.tune.study import STATE_COMPLETE, open_search
from edgecls.tune.trial import Fidelity
from edgecls.tune.tuner import _search, reserved_for_final
from helpers.tune import tiny_tune_config

FIDELITY = Fidelity(head_epochs=2, fine_tune_epochs=2, scratch_epochs=4, prune_epochs=1, final_epochs=21)


def candidate(weights: str, mac: float = 0.0) -> Candidate:
    pretrained = weights != "none"
    return Candidate(Signature("efficientnet_lite0", 96, mac), weights, 0.003,
                     1e-4 if pretrained else None, 0.3 if pretrained else None)


@pytest.mark.parametrize(("weights", "mac", "added_epochs"), [
    ("imagenet", 0.0, 21 - 7 - 2),  # 7 head epochs on cached features, 14 on images; the trial ran 2
    ("imagenet", 0.3, 21 - 7 - 2 + 1),  # pruning fine-tunes 2 epochs in full, 1 in the trial
    ("none", 0.0, 21 - 4),  # one phase from scratch: 21 epochs, 4 in the trial
])
def test_the_full_training_is_estimated_from_the_trials_epochs(weights: str, mac: float, added_epochs: int) -> None:
    assert FIDELITY.final_estimate_s(candidate(weights, mac), trial_s=50.0, epoch_s=10.0) == 50.0 + 10.0 * added_epochs


def test_a_final_no_longer_than_the_trial_adds_nothing() -> None:
    short = dataclasses.replace(FIDELITY, final_epochs=3)
    assert short.final_estimate_s(candidate("imagenet"), trial_s=50.0, epoch_s=10.0) == 50.0


def _study_with_trials(tmp_path: Path, results: list[tuple[float | None, float | None]]):
    """A study whose trials finished with (val accuracy, estimated full training seconds)."""
    search = open_search(f"sqlite:///{tmp_path / 'study.db'}", "s", local=True)
    for accuracy, estimate in results:
        trial = search.ask()
        trial.set("candidate", {"family": "tiny"})
        trial.set("latency_ms", 1.0)
        trial.set("size_bytes", 10**6)
        if estimate is not None:
            trial.set("final_estimate_s", estimate)
        if accuracy is None:
            trial.set("over_budget", True)
        else:
            trial.set("val_accuracy", accuracy)
        search.tell(trial, STATE_COMPLETE, accuracy or 0.0)
    return search


def test_the_time_kept_is_the_best_trials_estimate(tmp_path: Path) -> None:
    config = tiny_tune_config(tmp_path, tmp_path / "out", tmp_path / "cache", time_s=3600.0)
    search = _study_with_trials(tmp_path, [(0.6, 300.0), (0.8, 120.0), (None, None)])
    records = search.records()
    assert reserved_for_final(config, records) == 120.0  # the most accurate, not the longest
    assert reserved_for_final(dataclasses.replace(config, time_s=None), records) == 0.0
    assert reserved_for_final(dataclasses.replace(config, finalize=False), records) == 0.0
    assert reserved_for_final(config, []) == 0.0  # nothing trained yet: nothing to keep


def test_no_trial_starts_when_the_time_left_is_the_winners_training(tmp_path: Path) -> None:
    """--time 100 s, and the best trial's full training would take 500 s: the search ends
    before drawing a trial, saying why (nothing is trained or measured)."""
    config = tiny_tune_config(tmp_path, tmp_path / "out", tmp_path / "cache", time_s=100.0, trials=5)
    search = _study_with_trials(tmp_path, [(0.7, 500.0)])
    messages: list[str] = []
    _search(config, search, None, tmp_path / "split.json", messages.append)  # type: ignore[arg-type]
    assert messages == ["time budget of 100 s spent (its last 500 s kept for the best trial's full training): "
                        "no new trial starts"]
    assert len(search.records()) == 1
