"""How steady is `tune`'s latency decision: one bench against the median of rounds?

`edgecls tune` used to decide "over budget" on one bench of 50 timed runs; it now takes the
median p50 of ``ROUNDS`` benches (rounds) of ``ROUND_RUNS`` runs, and the median of
``ROUNDS + EXTRA_ROUNDS`` when the first rounds' range holds the limit. This builds the
untrained INT8 artifact of one signature (Lite0 128 px by default, as the search does) and,
``--repeats`` times: one 50-run bench, then ``ROUNDS + EXTRA_ROUNDS`` rounds. Each way's
decision is then taken against budgets set around the median of all single benches
(``--margins``, e.g. +0.1: a candidate 10 % under the budget), as the search would take it.
Printed: each way's decision values (median, range, relative spread), the seconds a decision
takes, and for each budget how often each way calls the artifact over it.

    .venv/bin/python benchmarks/tune_latency_rounds.py [--family efficientnet_lite0 --size 128 --repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--round-runs", type=int, default=None, help="timed runs per round (default: tune's)")
    parser.add_argument("--margins", default="-0.2,-0.1,0.1,0.2", help="budgets: (1 + margin) x the single median")
    args = parser.parse_args()
    from edgecls.bench.machine import cpu_model
    from edgecls.tune import latency_cache, steps
    from edgecls.tune.space import Signature

    runs = args.round_runs or latency_cache.ROUND_RUNS
    print(f"{cpu_model()}, {os.cpu_count()} cores; load average at start {_load()}")
    artifact = steps.untrained_artifact(Signature(args.family, args.size), 5, Path(tempfile.mkdtemp()))
    singles, rounds, seconds = _measure(artifact, args.repeats, runs)
    print(f"{args.family} {args.size} px untrained INT8, {args.repeats} repeats of one 50-run bench then "
          f"{len(rounds[0])} rounds of {runs} runs; load average at end {_load()}")
    reference = statistics.median(singles)
    budgets = [(1 + float(m)) * reference for m in args.margins.split(",")]
    first = [statistics.median(r[:latency_cache.ROUNDS]) for r in rounds]
    _line("one bench", singles, f"{seconds[0]:.1f} s", [sum(v > b for v in singles) for b in budgets])
    _line(f"median of {latency_cache.ROUNDS} rounds", first, f"{seconds[1]:.1f} s",
          [sum(_decide(r, b) for r in rounds) for b in budgets])
    print(f"budgets (ms, over-budget calls above): {', '.join(f'{b:.2f}' for b in budgets)}; "
          f"rounds straddling each: {', '.join(str(_straddled(rounds, b)) for b in budgets)} of {len(rounds)} "
          f"(those took {latency_cache.EXTRA_ROUNDS} more rounds, {seconds[2]:.1f} s each)")


def _measure(artifact: Path, repeats: int, runs: int) -> tuple[list[float], list[list[float]], list[float]]:
    """Per repeat: one single bench's p50 and every round's p50; mean seconds of a single
    bench, of ``ROUNDS`` rounds, and of the extra rounds."""
    from edgecls.tune import latency_cache, steps

    singles, rounds, spent = [], [], [[], [], []]
    for _ in range(repeats):
        started = time.perf_counter()
        singles.append(steps.bench_here(artifact, None)["latency"]["p50_ms"])
        times, p50s = [time.perf_counter()], []
        for _ in range(latency_cache.ROUNDS + latency_cache.EXTRA_ROUNDS):
            p50s.append(steps.bench_here(artifact, None, runs=runs)["latency"]["p50_ms"])
            times.append(time.perf_counter())
        rounds.append(p50s)
        spent[0].append(times[0] - started)
        spent[1].append(times[latency_cache.ROUNDS] - times[0])
        spent[2].append(times[-1] - times[latency_cache.ROUNDS])
    return singles, rounds, [statistics.mean(s) for s in spent]


def _decide(p50s: list[float], limit: float) -> bool:
    """Over ``limit``, as ``edgecls tune`` decides (extra rounds when the first straddle it)."""
    from edgecls.tune import latency_cache
    from edgecls.tune.budget import Budget

    budget = Budget(latency_ms=limit)
    rounds = [{"p50_ms": v} for v in p50s[:latency_cache.ROUNDS]]
    wanted = latency_cache.wanted_rounds(rounds, 0, budget)
    return budget.decide(p50s[:wanted], 0).endswith("over")


def _straddled(rounds: list[list[float]], limit: float) -> int:
    from edgecls.tune import latency_cache
    from edgecls.tune.budget import Budget

    return sum(Budget(latency_ms=limit).straddles(r[:latency_cache.ROUNDS], 0) for r in rounds)


def _line(name: str, values: list[float], cost: str, over: list[int]) -> None:
    low, high, middle = min(values), max(values), statistics.median(values)
    print(f"{name:20} median {middle:.2f} ms, range {low:.2f}-{high:.2f} ({(high - low) / middle:.0%}), "
          f"{cost} a decision; over-budget calls {', '.join(f'{n}/{len(values)}' for n in over)}")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
