"""The tuning run: split once, open the study, run trials until a budget is spent, bench
the finalists again with their trained weights, then train the winner in full and export
it through the gate.

``tune(config)`` is what ``edgecls tune`` calls. Layout of ``config.out``::

    tune.json        the settings (``--resume`` reads them back)
    split/           split.json and labels.txt, shared by every trial
    study.db         the study (the default SQLite storage)
    trials/NNNN/     each trained trial's run (and ``pruned/`` run)
    finalists/NNNN/  the best trials' trained weights as artifacts, benched again
    best/run         the winner trained in full; best/export its gated artifact
    trials.csv, index.html, pareto.png, summary.json
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgecls.atomic import write_text_atomic
from edgecls.data.split import Split, prepare_split
from edgecls.errors import ConfigError, EdgeclsError
from edgecls.rundir import RunDir, TuneDir
from edgecls.tune import finalists, latency_cache, report, steps
from edgecls.tune.budget import Budget
from edgecls.tune.latency_cache import BenchTarget, LatencyCache, LatencyMeter
from edgecls.tune.options import DEFAULT_STUDY
from edgecls.tune.space import Candidate, SearchSpace
from edgecls.tune.study import OutOfTime, Search, default_storage, open_search
from edgecls.tune.trial import OVER_BUDGET, Fidelity, TrialResult, run_trial, train_config

SETTINGS = "tune.json"
MAX_FAILURES_IN_A_ROW = 5
MAX_REPEATS_IN_A_ROW = 20  # the sampler keeps drawing tried candidates: it has converged
FINALISTS = 3


class NoCandidateError(EdgeclsError):
    """No candidate of the space meets the budget."""


@dataclass
class TuneConfig:
    """Everything one ``edgecls tune`` process needs.

    Attributes:
        data: the image folder.
        out: the tuning folder.
        budget: the latency and size limits.
        space: the search space.
        fidelity: epochs of each rung and of the winner.
        target: where latency and size are measured.
        storage: study storage URL (None: SQLite in ``out``).
        study: study name.
        trials: trained trials to finish, this process and others on the same study together.
        time_s: wall-clock seconds for the search and the winner's full training: no new
            trial starts once what is left is the best trial's estimated full training
            (``reserved_for_final``; None: no limit).
        seed: sampler and training seed.
        cache: the latency cache file (None: ``latency_cache.default_cache_path``).
        base: other ``TrainConfig`` fields for every training (e.g. ``augment``).
        finalize: train and export the winner once the search ends.
    """

    data: Path
    out: Path
    budget: Budget
    space: SearchSpace = field(default_factory=SearchSpace)
    fidelity: Fidelity = field(default_factory=Fidelity)
    target: BenchTarget = field(default_factory=BenchTarget)
    storage: str | None = None
    study: str = DEFAULT_STUDY
    trials: int = 20
    time_s: float | None = None
    seed: int = 0
    cache: Path | None = None
    base: dict[str, Any] = field(default_factory=dict)
    finalize: bool = True

    def settings(self) -> dict[str, Any]:
        """JSON-ready; saved in ``tune.json`` and in the study."""
        return {"data": str(Path(self.data).resolve()), "budget": dataclasses.asdict(self.budget),
                "space": self.space.describe(), "fidelity": dataclasses.asdict(self.fidelity),
                "storage": self.storage, "study": self.study, "trials": self.trials, "time_s": self.time_s,
                "seed": self.seed, "base": self.base,
                "host": self.target.host.text if self.target.host else None, "profile": self.target.profile}


@dataclass
class TuneResult:
    """How the run ended."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    winner: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False


Say = Callable[[str], None]


def load_settings(out: Path) -> dict[str, Any]:
    """The settings of an earlier ``edgecls tune --out OUT`` (for ``--resume``)."""
    path = Path(out) / SETTINGS
    if not path.is_file():
        raise ConfigError(f"{out} holds no tuning run to resume ({SETTINGS} is missing)",
                          "start one without --resume, with --data and a budget")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Tuning:
    """An opened tuning run: its study and the split every trial shares."""

    config: TuneConfig
    search: Search
    split_file: Path
    resume: bool = False


def open_tuning(config: TuneConfig, resume: bool = False) -> Tuning:
    """Checks the options, opens the study and makes the split, without TensorFlow: a
    bad storage, study or dataset fails here in a second, leaving a new --out absent.

    Raises:
        EdgeclsError: bad data, storage, study or space.
    """
    config.space.check()
    search, split_file = _open(config, resume)
    return Tuning(config, search, split_file, resume)


def tune(config: TuneConfig, resume: bool = False, say: Say | None = None) -> TuneResult:
    """``open_tuning`` then ``run_tuning``."""
    return run_tuning(open_tuning(config, resume), say)


def run_tuning(tuning: Tuning, say: Say | None = None) -> TuneResult:
    """Searches, then trains and exports the winner (see the module docstring).

    Raises:
        NoCandidateError: no candidate met the budget (the message names the closest).
        EdgeclsError: a host that fails, trials that keep failing, no finalist passing the gate.
        KeyboardInterrupt: never; Ctrl+C ends the search with the best so far
            (``TuneResult.interrupted``).
    """
    say = say or (lambda message: None)
    config, search, split_file = tuning.config, tuning.search, tuning.split_file
    for number in search.recover(tuning.resume):
        say(f"trial {number} was left running by a stopped process: marked failed, queued again")
    meter = _meter(config, split_file)
    interrupted = False
    try:
        _search(config, search, meter, split_file, say)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: the search stops with the best trial so far")
    rows = report.trial_rows(search.records())
    result = TuneResult(rows, _summary(config, search, meter, rows), interrupted=interrupted)
    _write_reports(config, result)
    if not report.feasible(rows):
        raise NoCandidateError(*_nothing_fits(config, rows))
    if config.finalize and not interrupted:
        _finalize(config, result, split_file, say)
        _write_reports(config, result)
    return result


def _open(config: TuneConfig, resume: bool) -> tuple[Search, Path]:
    """The study and the split, or a user error with nothing left behind in a new --out."""
    out = Path(config.out)
    _check_out(out, resume, config.storage)
    created = not out.exists()
    try:
        if config.storage is None:
            out.mkdir(parents=True, exist_ok=True)
        search = open_search(config.storage or default_storage(out), config.study, local=config.storage is None,
                             seed=config.seed, min_resource=max(1, config.fidelity.head_epochs))
        split_file = _split_once(config)
        search.claim(dataset_fingerprint(split_file), config.settings())
        write_text_atomic(out / SETTINGS, json.dumps(config.settings(), indent=1))
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return search, split_file


def _check_out(out: Path, resume: bool, storage: str | None) -> None:
    if not out.exists() or resume:
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder", "pass a new folder, e.g. tune/")
    if (out / SETTINGS).is_file() and storage is None:
        raise ConfigError(f"--out {out} already holds a tuning run", "continue it with --resume, or pass a new --out")
    entries = [p.name for p in out.iterdir() if not p.name.startswith(".")]
    if entries and not (out / SETTINGS).is_file():
        raise ConfigError(f"--out {out} is a folder of other files ({', '.join(sorted(entries)[:3])})",
                          "pass a new or empty folder, e.g. tune/")


def _split_once(config: TuneConfig) -> Path:
    """The dataset's split, made (and every file checked) once for all trials."""
    folder = Path(config.out) / "split"
    prepare_split(config.data, folder, seed=config.seed)
    return RunDir(folder).split


def dataset_fingerprint(split_file: Path) -> str:
    """Identifies the dataset a study searches: its classes and which file is in which
    subset (not its folder's path, which may differ between the machines of a cluster)."""
    split = Split.load(split_file)
    text = json.dumps({"labels": split.labels, "subsets": split.subsets}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _meter(config: TuneConfig, split_file: Path) -> LatencyMeter:
    classes = len(Split.load(split_file).labels)
    target = config.target
    runs = latency_cache.ROUND_RUNS
    if target.host is not None:
        bench = lambda artifact, sig: steps.bench_on_host(artifact, target.host, sig.threads,  # noqa: E731
                                                          target.profile, runs=runs)
    else:
        bench = lambda artifact, sig: steps.bench_here(artifact, sig.threads, runs=runs)  # noqa: E731
    return LatencyMeter(target, LatencyCache(config.cache), classes, Path(config.out) / "scratch",
                        steps.untrained_artifact, bench)


def _search(config: TuneConfig, search: Search, meter: LatencyMeter, split_file: Path, say: Say) -> None:
    """Runs trials until ``trials`` are finished, the time is spent, every signature is
    known to be over budget, every candidate was tried, the sampler keeps repeating
    tried ones, or trials keep failing."""
    started, failures, repeats = time.monotonic(), 0, 0
    deadline = None if config.time_s is None else started + config.time_s
    over: set[str] = set()
    signatures = {s.key() for s in config.space.signatures()}
    while search.finished() < config.trials:
        for number in search.recover(resume=False):  # another worker's trial whose heartbeat stopped
            say(f"trial {number} of a stopped worker: marked failed, queued again")
        kept = reserved_for_final(config, search.records())
        if deadline is not None and time.monotonic() + kept >= deadline:
            say(f"time budget of {config.time_s:.0f} s spent" + (
                f" (its last {kept:.0f} s kept for the best trial's full training)" if kept else "")
                + ": no new trial starts")
            return
        try:
            result = run_trial(search, config.space, meter, config.budget, config.data, split_file,
                               Path(config.out) / "trials", config.fidelity, config.base, say,
                               None if deadline is None else deadline - kept)
        except OutOfTime as stop:
            say(f"time budget of {config.time_s:.0f} s spent: {stop}, queued again")
            return
        _say_result(result, say)
        repeats = repeats + 1 if result.repeat_of is not None else 0
        if repeats and _exhausted(config, search, repeats, say):
            return
        if result.state == OVER_BUDGET:
            over.add(result.candidate.signature.key())
            if over >= signatures:
                say("every architecture of the search space is over the budget")
                return
        failures = failures + 1 if result.state == "failed" else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            raise EdgeclsError(f"{failures} trials in a row failed; the last: {result.note}",
                               f"see {config.out}/index.html")


def reserved_for_final(config: TuneConfig, records: list[dict[str, Any]]) -> float:
    """Seconds of ``--time`` kept for the winner's full training: the estimate its trial
    recorded (``final_estimate_s``) for the best trial so far; 0 without a time budget, a
    finished trial, or the final training (``finalize``)."""
    if config.time_s is None or not config.finalize:
        return 0.0
    best = report.feasible(report.trial_rows(records))
    if not best:
        return 0.0
    estimate = next((r.get("final_estimate_s") for r in records if r["number"] == best[0]["trial"]), None)
    return float(estimate or 0.0)


def _exhausted(config: TuneConfig, search: Search, repeats: int, say: Say) -> bool:
    """After a repeat: whether the search should end (every candidate of the space tried,
    or ``MAX_REPEATS_IN_A_ROW`` repeats in a row)."""
    if search.tried() >= config.space.size():
        say(f"every candidate of the search space ({config.space.size()}) has been tried")
        return True
    if repeats >= MAX_REPEATS_IN_A_ROW:
        say(f"the sampler drew {repeats} tried candidates in a row: the search has converged")
        return True
    return False


def _say_result(result: TrialResult, say: Say) -> None:
    if result.repeat_of is not None:
        say(f"trial {result.number}: same parameters as trial {result.repeat_of} ({result.state}): "
            "its result reused, not trained")
    elif result.state == "complete":
        say(f"trial {result.number}: val accuracy {result.val_accuracy:.4f}")
    elif result.state == OVER_BUDGET and result.measurement is not None:
        figures = result.measurement
        low, high = figures.spread()
        say(f"trial {result.number}: {result.candidate.signature.key()} over budget "
            f"({figures.latency_ms():.2f} ms p50 [{low:.2f}-{high:.2f}], {figures.size_bytes / 1e6:.2f} MB, "
            f"{result.decision}), not trained")
    else:
        say(f"trial {result.number}: {result.state}" + (f" ({result.note})" if result.note else ""))


def _nothing_fits(config: TuneConfig, rows: list[dict[str, Any]]) -> tuple[str, str]:
    """The one-line error and hint when no candidate met the budget: the closest ones."""
    measured = [r for r in rows if r["latency_ms"] is not None and r.get("repeat_of") is None]
    budget = config.budget
    closest = sorted(measured, key=lambda r: budget.excess(r["latency_ms"], r["size_mb"] * 1e6))[:3]
    shown = "; ".join(f"{r['family']} {r['size']}px mac-{r['mac_reduction']:.2f} {r['format']}: "
                      f"{r['latency_ms']:.2f} ms, {r['size_mb']:.2f} MB" for r in closest)
    if not closest:
        return ("no candidate could be measured or trained", f"see {config.out}/index.html")
    return (f"no candidate meets {budget.describe()} ({config.target.label()}); closest: {shown}",
            "raise --max-latency/--max-size, or add smaller input sizes or more pruning to the space")


def _summary(config: TuneConfig, search: Search, meter: LatencyMeter, rows: list[dict[str, Any]]) -> dict[str, Any]:
    states = [r["state"] for r in rows if r.get("repeat_of") is None]  # a repeat is counted as one alone
    return {"study": search.name, "budget": config.budget.describe(), "figures": config.target.label(),
            "trials": len(rows), "complete": states.count("complete"), "pruned": states.count("pruned"),
            "over_budget": states.count(OVER_BUDGET), "failed": states.count("failed"),
            "repeats": sum(1 for r in rows if r.get("repeat_of") is not None),
            "waited_for_twin": sum(1 for r in rows if r.get("waited_for_twin") is not None),  # among the repeats
            "borderline": sum(1 for r in rows if str(r.get("budget_decision")).startswith("remeasured")
                              and r.get("repeat_of") is None),  # trials decided after extra rounds
            "latency_measured_here": meter.measured, "latency_cache_hits": meter.hits,
            "latency_remeasured_here": meter.remeasured, "latency_benches_here": meter.benches}


def _write_reports(config: TuneConfig, result: TuneResult) -> None:
    out = Path(config.out)
    report.write_csv(result.rows, out / "trials.csv")
    plotted = report.plot_front(result.rows, config.budget, out / "pareto.png", config.target.label())
    report.write_html(result.rows, result.summary, out / "index.html", "pareto.png" if plotted else None)
    write_text_atomic(out / "summary.json", json.dumps({**result.summary, "winner": result.winner,
                                                        "notes": result.notes}, indent=1, default=str))


def _finalize(config: TuneConfig, result: TuneResult, split_file: Path, say: Say) -> None:
    """Benches the best trials again with their trained weights, then trains those still
    within budget in full, in val-accuracy order, until one passes the gate and, benched
    again, still meets the budget."""
    ranked = _finalists(config, result, say)
    for place, row in enumerate(ranked):
        say(f"training trial {row['trial']} in full ({config.fidelity.final_epochs} epochs)")
        manifest, record = _train_and_export(config, row, split_file)
        problem = _finalist_problem(config, row, manifest, record)
        if problem is None:
            result.winner = _winner(row, manifest, record, config)
            return
        note = problem + ("; taking the next candidate" if place + 1 < len(ranked) else "")
        result.notes.append(note)
        say(note)
    raise EdgeclsError(f"none of the {len(ranked)} best trials passed the export gate within the budget",
                       f"see the notes in {config.out}/summary.json and {config.out}/best/export/manifest.json")


def _finalists(config: TuneConfig, result: TuneResult, say: Say) -> list[dict[str, Any]]:
    """The first ``FINALISTS`` feasible trials still within budget when benched with their
    trained weights (the next ones when all of them drop out)."""
    candidates = report.feasible(result.rows)
    for start in range(0, len(candidates), FINALISTS):
        rebenched = finalists.rebench(config, candidates[start:start + FINALISTS], say)
        for note in rebenched.notes:
            result.notes.append(note)
            say(note)
        _write_reports(config, result)
        if rebenched.kept:
            return rebenched.kept
    raise EdgeclsError(f"all {len(candidates)} trained trials are over {config.budget.describe()} when benched "
                       "with their trained weights", f"see the notes in {config.out}/summary.json; "
                       "a looser budget or more trials may find one")


def _finalist_problem(config: TuneConfig, row: dict[str, Any], manifest: Any, record: dict[str, Any]) -> str | None:
    """Why a finalist cannot be the winner (None: it can)."""
    if manifest.failed:
        failed = manifest.failed[0]
        return f"trial {row['trial']} failed the export gate ({failed.verdict}, {failed.drop_pp:+.2f} pp)"
    latency = (record.get("latency") or {}).get(config.budget.latency_key, 0.0)
    size = record.get("size_bytes") or 0
    if config.budget.excess(latency, size) > 0:
        return (f"trial {row['trial']} trained measures {latency:.2f} ms, {size / 1e6:.2f} MB: over the budget "
                f"(its untrained proxy measured {row['latency_ms']:.2f} ms, {row['size_mb']:.2f} MB)")
    return None


def _train_and_export(config: TuneConfig, row: dict[str, Any], split_file: Path) -> tuple[Any, dict[str, Any]]:
    """Full training (then pruning) of ``row``'s candidate into best/, the gated export
    into best/export, and a bench of the trained artifact on the target."""
    layout = TuneDir(Path(config.out))
    shutil.rmtree(layout.best, ignore_errors=True)
    full = layout.best_unpruned if row["mac_reduction"] else layout.best_run
    full.mkdir(parents=True)
    shutil.copy(split_file, RunDir(full).split)
    shutil.copy(RunDir(split_file.parent).labels, RunDir(full).labels)
    signature = finalists.signature_of(row, config.space.precision)
    candidate = Candidate(signature, row["weights"], row["lr"], row["fine_tune_lr"], row["fine_tune_fraction"])
    fidelity = config.fidelity
    head = fidelity.final_head_epochs(candidate)
    trained = steps.train_run(train_config(candidate, config.data, full, fidelity.final_epochs, fidelity,
                                           config.base, head_epochs=head))
    test_accuracy = (trained.test_metrics or {}).get("accuracy")
    run = full
    if row["mac_reduction"]:
        run = layout.best_run
        test_accuracy = steps.prune_run(full, run, row["mac_reduction"], max(2, fidelity.prune_epochs)).accuracy_after
    manifest = steps.export_gated(run, layout.best_export.root, row["format"], "int8", row["threads"])
    artifact = layout.best_export.root / manifest.artifacts[0].path
    record = _bench_trained(config, artifact, row["threads"])
    record["float_test_accuracy"] = test_accuracy
    return manifest, record


def _bench_trained(config: TuneConfig, artifact: Path, threads: int | None) -> dict[str, Any]:
    """The trained artifact benched again on the target (untrained timings are noisy)."""
    if config.target.host is not None:
        return steps.bench_on_host(artifact, config.target.host, threads, config.target.profile)
    return steps.bench_here(artifact, threads)


def _winner(row: dict[str, Any], manifest: Any, record: dict[str, Any], config: TuneConfig) -> dict[str, Any]:
    artifact = manifest.artifacts[0]
    latency = record.get("latency") or {}
    return {"trial": row["trial"], "family": row["family"], "size": row["size"],
            "mac_reduction": row["mac_reduction"], "format": row["format"], "threads": row["threads"],
            "trial_val_accuracy": row["val_accuracy"], "run": str(TuneDir(Path(config.out)).best_run),
            "artifact": str(TuneDir(Path(config.out)).best_export.root / artifact.path),
            "float_test_accuracy": record.get("float_test_accuracy"),
            "int8_accuracy_held_out": artifact.accuracy, "gate": artifact.verdict,
            "latency_ms": latency.get(config.budget.latency_key), "size_bytes": record.get("size_bytes"),
            "within_budget": config.budget.excess(latency.get(config.budget.latency_key, 0.0),
                                                  record.get("size_bytes") or 0) <= 0,
            "figures": config.target.label()}
