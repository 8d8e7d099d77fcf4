"""`edgecls tune` end to end on tiny data and a tiny model family."""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path

import pytest

from edgecls.tune.budget import Budget
from edgecls.tune import report
from edgecls.tune.study import STATE_COMPLETE, default_storage, open_search
from edgecls.tune.tuner import NoCandidateError, reserved_for_final, tune
from helpers.tune import tiny_tune_config


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory):
    """One tiny search of two trials, finished with the winner trained and exported."""
    from helpers.images import write_image_folder

    root = tmp_path_factory.mktemp("tune")
    data = write_image_folder(root / "images", {"circle_r": 20, "square_g": 20, "circle_b": 20})
    config = tiny_tune_config(data, root / "out", root / "cache" / "latency.json")
    started = time.monotonic()
    messages: list[str] = []
    result = tune(config, say=messages.append)
    return config, result, messages, time.monotonic() - started


def test_tiny_search_ends_with_the_winner_exported_through_the_gate(searched) -> None:
    config, result, messages, seconds = searched
    out = config.out
    assert [r["state"] for r in result.rows] == ["complete", "complete"]
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["latency_ms"] > 0 for r in result.rows)
    winner = result.winner
    assert winner is not None and winner["gate"] in ("passed", "inconclusive")
    assert (out / "best" / "run" / "best.keras").is_file()
    manifest = json.loads((out / "best" / "export" / "manifest.json").read_text())
    assert manifest["artifacts"][0]["path"].endswith(".tflite")
    assert (out / "best" / "run" / "metrics.json").is_file()  # the winner's test report
    assert 0.0 <= winner["float_test_accuracy"] <= 1.0 and winner["latency_ms"] > 0
    # the trials never read the test split: no trial run has a test evaluation
    assert not list((out / "trials").rglob("metrics.json"))
    assert "this machine" in winner["figures"] and "this machine" in result.summary["figures"]
    for name in ("trials.csv", "index.html", "pareto.png", "summary.json"):
        assert (out / name).is_file(), name
    assert "Pareto" in (out / "index.html").read_text()
    # the space has one signature: measured once (three rounds), then a cache hit
    assert result.summary["latency_measured_here"] == 1 and result.summary["latency_cache_hits"] == 1
    assert result.summary["latency_benches_here"] == 3 and result.summary["latency_remeasured_here"] == 0
    for row in result.rows:  # the median of the rounds, their range, and how the budget decided
        assert row["latency_min_ms"] <= row["latency_ms"] <= row["latency_max_ms"] and row["latency_rounds"] == 3
        assert row["budget_decision"] == "within" and row["repeat_of"] is None
    assert result.summary["repeats"] == 0 and result.summary["borderline"] == 0
    print(f"tiny search: {seconds:.1f} s")


def test_each_trained_trial_estimates_its_full_training(searched) -> None:
    """What `--time` keeps for the winner: each trained trial records its training time and
    the estimate of its full training (its trial time plus the epochs the final adds)."""
    config, result, _, _ = searched
    records = {r["number"]: r for r in open_search(default_storage(config.out), config.study, local=True).records()}
    for row in result.rows:
        record = records[row["trial"]]
        assert 0 < record["train_s"] <= record["final_estimate_s"]
    best = records[report.feasible(result.rows)[0]["trial"]]
    timed = dataclasses.replace(config, time_s=3600.0)
    assert reserved_for_final(timed, list(records.values())) == best["final_estimate_s"]


def test_finalists_are_benched_again_with_their_trained_weights(searched) -> None:
    config, result, messages, _ = searched
    assert "benching the finalists again with their trained weights: trials 0, 1" in messages
    for row in result.rows:  # both trials are finalists: each has its own trained artifact's figures
        assert row["trained_latency_ms"] > 0 and row["trained_size_mb"] > 0
        assert list((config.out / "finalists" / f"{row['trial']:04d}").glob("trial*_int8.tflite"))
    with open(config.out / "trials.csv", newline="") as handle:
        saved = list(csv.DictReader(handle))
    assert all(float(r["trained_latency_ms"]) > 0 and float(r["latency_ms"]) > 0 for r in saved)
    assert all(r["budget_decision"] == "within" and r["latency_rounds"] == "3" and r["latency_max_ms"] for r in saved)
    assert "trained_latency_ms" in (config.out / "index.html").read_text()


def test_budget_no_candidate_meets(searched, tmp_path: Path) -> None:
    config, _, _, _ = searched
    tight = tiny_tune_config(config.data, tmp_path / "out", config.cache,
                             budget=Budget(latency_ms=0.0001), trials=5)
    with pytest.raises(NoCandidateError) as info:
        tune(tight)
    message = str(info.value)
    assert "no candidate meets p50 latency <= 0.0001 ms" in message and "closest: tiny_cnn 32px" in message
    assert "\n" not in message
    assert not list((tmp_path / "out").glob("trials/*/run"))  # nothing was trained
    assert (tmp_path / "out" / "index.html").is_file()


def test_resume_on_the_command_line_reads_the_saved_settings(searched) -> None:
    """`edgecls tune --out OUT --resume` needs no --data nor budget: tune.json has them."""
    from edgecls.tune.options import TuneOptions

    config, _, _, _ = searched
    resumed = TuneOptions().to_config(None, config.out, resume=True)
    assert resumed.budget == config.budget and resumed.space.families == config.space.families
    assert resumed.trials == config.trials and resumed.fidelity == config.fidelity
    assert Path(resumed.data).resolve() == Path(config.data).resolve()


def test_resume_retries_a_trial_left_running_by_a_kill(searched, monkeypatch) -> None:
    """A process killed mid-trial leaves it RUNNING in the storage; --resume fails it and
    runs it again with the same parameters. The space's two candidates were both trained
    already: the retry repeats one, reuses its result without training, and the search
    ends there, every candidate tried."""
    import dataclasses

    from edgecls.tune import steps

    config, _, _, _ = searched
    search = open_search(default_storage(config.out), config.study, local=True)
    killed = search.ask()
    killed.choose("family", config.space.families)
    killed.choose("size", config.space.sizes)
    lr = killed.choose("scratch_lr", config.space.scratch_lrs)
    trainings: list[object] = []
    train_run = steps.train_run
    monkeypatch.setattr(steps, "train_run", lambda *args, **kw: trainings.append(args) or train_run(*args, **kw))
    messages: list[str] = []
    result = tune(dataclasses.replace(config, trials=3, finalize=False), resume=True, say=messages.append)
    assert f"trial {killed.number} was left running by a stopped process: marked failed, queued again" in messages
    states = {r["trial"]: r["state"] for r in result.rows}
    assert states[killed.number] == "failed" and list(states.values()).count("complete") == 3
    retried = [r for r in result.rows if r["trial"] > killed.number]
    assert len(retried) == 1 and retried[0]["lr"] == lr
    twin = next(r for r in result.rows if r["lr"] == lr and r["trial"] < killed.number)
    assert trainings == [] and retried[0]["repeat_of"] == twin["trial"]
    assert retried[0]["val_accuracy"] == twin["val_accuracy"] and retried[0]["latency_ms"] == twin["latency_ms"]
    assert messages[-1] == "every candidate of the search space (2) has been tried"
    assert result.summary["repeats"] == 1 and result.summary["latency_benches_here"] == 0
    assert (result.summary["complete"], result.summary["failed"], result.summary["trials"]) == (2, 1, 4)
    with open(config.out / "trials.csv", newline="") as handle:
        saved = {int(r["trial"]): r for r in csv.DictReader(handle)}
    assert saved[retried[0]["trial"]]["repeat_of"] == str(twin["trial"]) and saved[twin["trial"]]["repeat_of"] == ""
    finalists = {r["trial"] for r in report.feasible(result.rows)}  # a repeat is never a finalist
    assert twin["trial"] in finalists and retried[0]["trial"] not in finalists and len(finalists) == 2


def test_a_finalist_that_fails_the_gate_or_the_budget_gives_way(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from edgecls.tune.tuner import _finalist_problem

    config = tiny_tune_config(tmp_path, tmp_path / "out", tmp_path / "cache", budget=Budget(latency_ms=2.0))
    row = {"trial": 4, "latency_ms": 1.5, "size_mb": 3.0}
    passed = SimpleNamespace(failed=[])
    within = {"latency": {"p50_ms": 1.9}, "size_bytes": 3_000_000}
    assert _finalist_problem(config, row, passed, within) is None
    gate = SimpleNamespace(failed=[SimpleNamespace(verdict="failed", drop_pp=2.5)])
    assert _finalist_problem(config, row, gate, within) == "trial 4 failed the export gate (failed, +2.50 pp)"
    slow = _finalist_problem(config, row, passed, {"latency": {"p50_ms": 2.6}, "size_bytes": 3_000_000})
    assert slow.startswith("trial 4 trained measures 2.60 ms") and "untrained proxy measured 1.50 ms" in slow


def test_a_pruned_trial_never_reads_the_test_split(tmp_path: Path, monkeypatch) -> None:
    """Every test image is overwritten with bytes no decoder reads once the split exists:
    a search whose candidate is trained, structured-pruned and fine-tuned still finishes,
    ranked on val only."""
    import dataclasses

    from edgecls.data.split import Split
    from edgecls.tune import space
    from edgecls.tune.tuner import open_tuning, run_tuning
    from helpers.images import write_image_folder
    from helpers.tune import TINY_MBCONV, tiny_space

    data = write_image_folder(tmp_path / "images", {"circle_r": 12, "square_g": 12, "circle_b": 12})
    config = tiny_tune_config(data, tmp_path / "out", tmp_path / "latency.json", trials=1, finalize=False,
                              space=tiny_space(family=TINY_MBCONV, mac_reductions=(0.3,)))
    config.fidelity = dataclasses.replace(config.fidelity, scratch_epochs=1)
    monkeypatch.setattr(space, "PRUNABLE", (*space.PRUNABLE, TINY_MBCONV))  # the block pruning narrows
    tuning = open_tuning(config)
    tuning.search.study.enqueue_trial({"mac_reduction": 0.3})
    test_images = Split.load(tuning.split_file).items("test")
    assert test_images
    for path, _ in test_images:
        path.write_bytes(b"not an image")
    result = run_tuning(tuning)
    assert [r["state"] for r in result.rows] == ["complete"], result.rows
    pruned = json.loads((config.out / "trials" / "0000" / "pruned" / "prune_report.json").read_text())
    assert pruned["scored_on"] == "val" and pruned["mac_reduction"] > 0.1
    assert result.rows[0]["val_accuracy"] == max(pruned["val_accuracy"])


def test_a_finalist_over_budget_on_re_bench_drops_out() -> None:
    from edgecls.tune.finalists import split_by_budget

    rows = [{"trial": 3, "latency_ms": 1.5, "size_mb": 0.5, "trained_latency_ms": 2.4, "trained_size_mb": 0.5},
            {"trial": 5, "latency_ms": 1.7, "size_mb": 0.5, "trained_latency_ms": 1.8, "trained_size_mb": 0.5}]
    rebenched = split_by_budget(rows, Budget(latency_ms=2.0))
    assert [r["trial"] for r in rebenched.kept] == [5]
    assert rebenched.notes == ["trial 3 drops out on re-bench: its trained weights measure 2.40 ms, 0.50 MB, "
                               "over p50 latency <= 2 ms (its untrained signature measured 1.50 ms, 0.50 MB)"]


def test_the_python_api_tunes_and_renders_in_a_notebook(searched, tmp_path: Path, monkeypatch, capsys) -> None:
    """`edgecls.tune_model` takes the command line's options (budgets with units, lists as
    text or Python lists) and returns a result that renders itself in a notebook."""
    import io

    from rich.console import Console

    import edgecls
    from edgecls.cli.tune import _render
    from helpers.runs import TINY

    config, _, _, _ = searched
    monkeypatch.setenv("EDGECLS_TUNE_CACHE", str(config.cache))  # the fixture measured this signature
    out = tmp_path / "tune"
    result = edgecls.tune_model(config.data, out=out, max_latency="1s", max_size="10MB", families=TINY,
                                sizes=[32], trials=1, final_epochs=1, progress=False)
    assert isinstance(result, edgecls.TuningResult) and not result.interrupted
    assert result.summary["latency_cache_hits"] == 1 and result.summary["latency_measured_here"] == 0
    assert [r["state"] for r in result.trials] == ["complete"] and result.trials[0]["trained_latency_ms"] > 0
    assert result.winner["trial"] == 0 and Path(result.winner["artifact"]).is_file()
    assert "trial 0: val accuracy" in " ".join(result.messages)
    assert result.messages[0].startswith("budget: p50 latency <= 1000 ms and size <= 10 MB")
    assert "this machine" in result.messages[0]
    assert "val accuracy" not in capsys.readouterr().err  # progress=False: kept, not printed
    assert result.pareto_png == out / "pareto.png"
    page = result._repr_html_()
    assert "winner: trial 0 tiny_cnn 32px" in page and "<img" in page and "trained_latency_ms" in page
    assert json.loads(json.dumps(result.to_dict()))["winner"]["trial"] == 0
    console = Console(file=io.StringIO(), width=250)
    _render(result, console)  # what `edgecls tune` prints of it
    printed = console.file.getvalue()
    assert "winner: trial 0 tiny_cnn 32px" in printed and "0 repeats (result reused)" in printed
    low, high = result.trials[0]["latency_min_ms"], result.trials[0]["latency_max_ms"]
    assert f"{result.trials[0]['latency_ms']:.2f} ({low:.2f}-{high:.2f})" in printed  # median (range) of rounds


def test_a_finalist_trained_on_another_worker_keeps_its_first_figures(tmp_path: Path) -> None:
    """A shared study's trial may have run on another machine: its run is not here to export."""
    from edgecls.tune.finalists import rebench

    config = tiny_tune_config(tmp_path, tmp_path / "out", tmp_path / "cache")
    row = {"trial": 7, "run_dir": "/on/worker-b/trials/0007/run", "latency_ms": 1.0, "size_mb": 0.1}
    messages: list[str] = []
    rebenched = rebench(config, [row], messages.append)
    assert rebenched.kept == [row] and "trained_latency_ms" not in row and messages == []
    assert rebenched.notes == ["trial 7 was trained by another worker (its run is not on this machine): "
                               "not benched again"]


def test_a_search_whose_sampler_keeps_repeating_ends(tmp_path: Path) -> None:
    """Repeats cost a lookup and count towards nothing, so a sampler that keeps drawing tried
    candidates would never reach --trials: the search ends after MAX_REPEATS_IN_A_ROW of
    them, or at once when the space has no untried candidate left."""
    from edgecls.tune.tuner import MAX_REPEATS_IN_A_ROW, _exhausted

    config = tiny_tune_config(tmp_path, tmp_path / "out", tmp_path / "cache")
    search = open_search(f"sqlite:///{tmp_path / 'study.db'}", "s", local=True)
    messages: list[str] = []
    trial = search.ask()
    config.space.sample(trial)
    search.tell(trial, STATE_COMPLETE, 0.5)
    assert not _exhausted(config, search, 1, messages.append) and messages == []  # 1 of 2 candidates tried
    assert _exhausted(config, search, MAX_REPEATS_IN_A_ROW, messages.append)
    assert messages == [f"the sampler drew {MAX_REPEATS_IN_A_ROW} tried candidates in a row: the search has converged"]
