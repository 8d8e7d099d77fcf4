"""The live loop's statistics: percentiles right, memory constant however long the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np

from edgecls.live.loop import Stats


def test_percentiles_exact_within_capacity() -> None:
    stats = Stats(capacity=1000)
    values = np.random.default_rng(1).gamma(2.0, 3.0, 1000)
    for value in values:
        stats.add(float(value))
    summary = stats.summary()
    assert summary["frames"] == 1000
    assert summary["latency_ms_p50"] == round(float(np.percentile(values, 50)), 3)
    assert summary["latency_ms_p95"] == round(float(np.percentile(values, 95)), 3)
    assert summary["latency_ms_mean"] == round(float(values.mean()), 3)


def test_percentiles_estimated_beyond_capacity() -> None:
    stats = Stats(capacity=2000)
    values = np.random.default_rng(2).gamma(2.0, 3.0, 60_000)
    for value in values:
        stats.add(float(value))
    summary = stats.summary()
    assert summary["frames"] == 60_000
    assert abs(summary["latency_ms_p50"] - np.percentile(values, 50)) < 0.05 * np.percentile(values, 50)
    assert abs(summary["latency_ms_p95"] - np.percentile(values, 95)) < 0.05 * np.percentile(values, 95)
    assert summary["latency_ms_mean"] == round(float(values.mean()), 3)


def test_stats_memory_does_not_grow_with_frames() -> None:
    stats = Stats()
    for _ in range(5000):  # past the reservoir's capacity
        stats.add(1.5)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for i in range(30_000):
            stats.add(1.0 + (i % 7))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.frames == 35_000
    assert after - before < 2048, f"stats grew by {after - before} bytes over 30,000 frames"


def test_stop_on_signals_keeps_ignored_signals_ignored() -> None:
    """In a fresh interpreter: a real signal raised inside the pytest process (where native
    libraries that install their own handlers may already be loaded) can crash it."""
    code = textwrap.dedent("""
        import signal
        from edgecls.live.stopping import StopOnSignals

        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with StopOnSignals() as stop:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == stop._handle
            signal.raise_signal(signal.SIGTERM)
            assert stop.received == "SIGTERM", stop.received
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
