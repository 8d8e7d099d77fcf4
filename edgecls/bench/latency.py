"""Latency measurement: a fixed warm-up, then N timed runs or a time budget.

The noise of a shared machine is made visible, not hidden: besides the percentiles a
summary holds the number of runs, the standard deviation, and the p50 of each of
``BLOCKS`` consecutive blocks of runs with their spread. Warm-up runs are never
timed, and the garbage collector is paused while timing so it cannot add outliers.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable

import numpy as np

BLOCKS = 5
MIN_RUNS_FOR_BUDGET = 10


def time_calls(
    fn: Callable[[], Any],
    warmup: int = 10,
    runs: int | None = 100,
    seconds: float | None = None,
) -> np.ndarray:
    """Calls ``fn`` ``warmup`` times untimed, then times it.

    Args:
        fn: the call to time (one inference).
        warmup: untimed calls first (caches, lazy allocation, CPU frequency ramp-up).
        runs: number of timed calls; ignored when ``seconds`` is given.
        seconds: time budget; calls until it is spent (at least ``MIN_RUNS_FOR_BUDGET``).

    Returns:
        The duration of each timed call in milliseconds.
    """
    if seconds is None and (runs is None or runs < 1):
        raise ValueError("either runs >= 1 or seconds must be given")
    for _ in range(max(0, warmup)):
        fn()
    durations: list[int] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        deadline = time.perf_counter_ns() + int(seconds * 1e9) if seconds is not None else None
        while True:
            start = time.perf_counter_ns()
            fn()
            end = time.perf_counter_ns()
            durations.append(end - start)
            if deadline is None:
                if len(durations) >= runs:  # type: ignore[operator]
                    break
            elif end >= deadline and len(durations) >= MIN_RUNS_FOR_BUDGET:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(durations, dtype=np.float64) / 1e6


def summarize(times_ms: np.ndarray, batch_size: int = 1) -> dict[str, Any]:
    """Statistics of timed calls (keys documented in SCHEMA.md, ``latency``)."""
    times_ms = np.asarray(times_ms, dtype=np.float64)
    if times_ms.size == 0:
        raise ValueError("no timed runs to summarize")
    p50, p90, p99 = np.percentile(times_ms, [50, 90, 99])
    mean = float(times_ms.mean())
    block_p50 = _block_medians(times_ms)
    return {
        "runs": int(times_ms.size),
        "batch_size": batch_size,
        "mean_ms": _round(mean),
        "std_ms": _round(float(times_ms.std(ddof=1)) if times_ms.size > 1 else 0.0),
        "min_ms": _round(float(times_ms.min())),
        "p50_ms": _round(float(p50)),
        "p90_ms": _round(float(p90)),
        "p99_ms": _round(float(p99)),
        "max_ms": _round(float(times_ms.max())),
        "fps": _round(1000.0 * batch_size / mean if mean > 0 else 0.0, 2),
        "total_s": _round(float(times_ms.sum()) / 1000.0),
        "block_p50_ms": [_round(v) for v in block_p50],
        "block_p50_spread_pct": _round(_spread_pct(block_p50), 2),
    }


def _block_medians(times_ms: np.ndarray) -> list[float]:
    """p50 of each of up to ``BLOCKS`` consecutive, equally long blocks of runs."""
    blocks = min(BLOCKS, times_ms.size)
    return [float(np.median(block)) for block in np.array_split(times_ms, blocks)]


def _spread_pct(values: list[float]) -> float:
    """(max - min) / median of ``values``, in percent: how far repeated p50s disagree."""
    center = float(np.median(values))
    return 100.0 * (max(values) - min(values)) / center if center > 0 else 0.0


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits)
