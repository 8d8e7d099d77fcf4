"""Finalists benched again with their trained weights, before any full training.

A trial's latency and size come from its signature's artifact with untrained weights,
measured once per architecture (timings are noisy, and a trained model's INT8 ranges
can change the work a runtime does). Before the winner is trained in full, the best
trials' own trained weights are exported (INT8, the searched format, not gated: the
gate would read the test split) and benched side by side: ``ROUNDS`` short rounds, each
benching every finalist once in a rotated order, the median of each finalist's rounds
kept. A finalist over the budget on these figures drops out. A finalist another worker
of a shared study trained (its run is on that machine) keeps its first figures.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgecls.rundir import RunDir, TuneDir
from edgecls.tune import steps
from edgecls.tune.space import Signature

ROUNDS = 3
ROUND_RUNS = 20  # timed runs per finalist and round


@dataclass
class Rebenched:
    """The finalists still within budget, and why the others dropped out."""

    kept: list[dict[str, Any]]
    notes: list[str]


def signature_of(row: dict[str, Any], precision: str = "int8") -> Signature:
    """The architecture signature of a trial row."""
    return Signature(row["family"], row["size"], row["mac_reduction"], precision, row["format"], row["threads"])


def rebench(config: Any, rows: list[dict[str, Any]], say: Callable[[str], None]) -> Rebenched:
    """Benches ``rows``' trained trial weights on ``config.target``; sets each row's
    ``trained_latency_ms`` and ``trained_size_mb``; keeps the rows within budget, in order."""
    here = [r for r in rows if r.get("run_dir") and RunDir(Path(r["run_dir"])).best_model.is_file()]
    elsewhere = [f"trial {r['trial']} was trained by another worker (its run is not on this machine): "
                 "not benched again" for r in rows if r not in here]
    if not here:
        return Rebenched(list(rows), elsewhere)
    layout = TuneDir(Path(config.out))
    say("benching the finalists again with their trained weights: trials "
        + ", ".join(str(r["trial"]) for r in here))
    artifacts = {r["trial"]: steps.trained_artifact(Path(r["run_dir"]), signature_of(r, config.space.precision),
                                                    layout.finalist(r["trial"]), f"trial{r['trial']:04d}")
                 for r in here}  # distinct names: a remote bench copies them into one folder
    latencies = _rounds(config, here, artifacts)
    for row in here:
        row["trained_latency_ms"] = statistics.median(latencies[row["trial"]])
        row["trained_size_mb"] = round(artifacts[row["trial"]].stat().st_size / 1e6, 3)
    benched = split_by_budget(here, config.budget)
    return Rebenched([r for r in rows if r in benched.kept or r not in here], elsewhere + benched.notes)


def split_by_budget(rows: list[dict[str, Any]], budget: Any) -> Rebenched:
    """The rows whose trained figures meet ``budget``, and a note for each that does not."""
    kept, notes = [], []
    for row in rows:
        latency, size_mb = row["trained_latency_ms"], row["trained_size_mb"]
        if budget.excess(latency, size_mb * 1e6) <= 0:
            kept.append(row)
            continue
        notes.append(f"trial {row['trial']} drops out on re-bench: its trained weights measure {latency:.2f} ms, "
                     f"{size_mb:.2f} MB, over {budget.describe()} (its untrained signature measured "
                     f"{row['latency_ms']:.2f} ms, {row['size_mb']:.2f} MB)")
    return Rebenched(kept, notes)


def _rounds(config: Any, rows: list[dict[str, Any]], artifacts: dict[int, Path]) -> dict[int, list[float]]:
    """Each finalist's latency (the budget's percentile) in every round; the finalists of
    one thread count share each round's bench run, in an order rotated every round."""
    latencies: dict[int, list[float]] = {r["trial"]: [] for r in rows}
    groups: dict[Any, list[int]] = {}
    for row in rows:
        groups.setdefault(row["threads"], []).append(row["trial"])
    target, key = config.target, config.budget.latency_key
    for round_index in range(ROUNDS):
        for threads, trials in groups.items():
            shift = round_index % len(trials)
            order = trials[shift:] + trials[:shift]
            records = steps.bench_side_by_side([artifacts[t] for t in order], threads, target.host,
                                               target.profile, runs=ROUND_RUNS)
            for trial, record in zip(order, records):
                latencies[trial].append(float(record["latency"][key]))
    return latencies
