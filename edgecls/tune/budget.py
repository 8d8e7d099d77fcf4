"""Budgets as users write them: ``10ms``, ``15 ms``, ``0.5s``; ``4MB``, ``500kB``, ``2MiB``;
``3h``, ``90min``. A number without a unit is refused: ``10`` could be ms or s, bytes or MB."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from edgecls.errors import ConfigError

_NUMBER = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[A-Za-z]*)\s*$")
_LATENCY_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0}
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
               "kib": 2**10, "mib": 2**20, "gib": 2**30}
_DURATION_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Budget:
    """What a candidate must meet on the target (None: no limit on that figure)."""

    latency_ms: float | None = None
    size_bytes: int | None = None
    percentile: int = 50

    @property
    def latency_key(self) -> str:
        """The key of the bench's latency summary the budget is on (``p50_ms``...)."""
        return f"p{self.percentile}_ms"

    def excess(self, latency_ms: float, size_bytes: int) -> float:
        """How far a measured candidate is over budget: the largest ratio of a figure to
        its limit, minus 1 (<= 0: within budget)."""
        ratios = [0.0]
        if self.latency_ms is not None:
            ratios.append(latency_ms / self.latency_ms)
        if self.size_bytes is not None:
            ratios.append(size_bytes / self.size_bytes)
        return max(ratios) - 1.0

    def straddles(self, samples: Sequence[float], size_bytes: int) -> bool:
        """The latency limit lies within the rounds' range (lowest <= limit < highest) while
        the size meets its own: one more bench could land either side of the line."""
        if self.latency_ms is None or not samples:
            return False
        if self.size_bytes is not None and size_bytes > self.size_bytes:
            return False  # over on size whatever the latency
        return min(samples) <= self.latency_ms < max(samples)

    def decide(self, samples: Sequence[float], size_bytes: int) -> str:
        """``within`` or ``over`` on the median of the rounds, prefixed ``remeasured-``
        when the rounds straddle the limit (the extra rounds were run before deciding)."""
        verdict = "within" if self.excess(statistics.median(samples), size_bytes) <= 0 else "over"
        return f"remeasured-{verdict}" if self.straddles(samples, size_bytes) else verdict

    def describe(self) -> str:
        parts = []
        if self.latency_ms is not None:
            parts.append(f"p{self.percentile} latency <= {self.latency_ms:g} ms")
        if self.size_bytes is not None:
            parts.append(f"size <= {self.size_bytes / 1e6:g} MB")
        return " and ".join(parts) or "no budget"


def _split(text: str, option: str, example: str) -> tuple[float, str]:
    match = _NUMBER.match(str(text))
    if not match:
        raise ConfigError(f"{option} {text!r} is not a number with a unit", f"write e.g. {option} {example}")
    return float(match["value"]), match["unit"]


def _scaled(text: str, option: str, example: str, units: dict[str, float]) -> float:
    value, unit = _split(text, option, example)
    if not unit:
        raise ConfigError(f"{option} {text!r} has no unit", f"write e.g. {option} {example} "
                          f"(units: {', '.join(units)})")
    factor = units.get(unit) if unit in units else units.get(unit.lower())
    if factor is None:
        raise ConfigError(f"{option} {text!r}: unknown unit {unit!r}", f"use one of: {', '.join(units)}")
    if value <= 0:
        raise ConfigError(f"{option} {text!r} must be above zero", f"write e.g. {option} {example}")
    return value * factor


def parse_latency(text: str, option: str = "--max-latency") -> float:
    """Milliseconds from ``10ms``, ``15 ms``, ``0.5s`` or ``800us``."""
    return _scaled(text, option, "10ms", _LATENCY_UNITS)


def parse_size(text: str, option: str = "--max-size") -> int:
    """Bytes from ``4MB`` (10^6), ``500kB`` (10^3) or ``2MiB`` (2^20)."""
    return int(round(_scaled(text, option, "4MB", _SIZE_UNITS)))


def parse_duration(text: str, option: str = "--time") -> float:
    """Seconds from ``3h``, ``90min``, ``45m`` or ``600s``."""
    return _scaled(text, option, "3h", _DURATION_UNITS)


def parse_percentile(value: int) -> int:
    """Checks ``--latency-percentile`` (one the bench reports: 50, 90 or 99)."""
    if value not in PERCENTILES:
        raise ConfigError(f"--latency-percentile {value} is not measured by the bench",
                          f"use one of: {', '.join(map(str, PERCENTILES))}")
    return value


def make_budget(max_latency: str | None, max_size: str | None, percentile: int = 50) -> Budget:
    """The budget from the command-line texts; at least one limit is required."""
    if max_latency is None and max_size is None:
        raise ConfigError("no budget given", "pass --max-latency (e.g. 10ms) and/or --max-size (e.g. 4MB)")
    return Budget(latency_ms=parse_latency(max_latency) if max_latency is not None else None,
                  size_bytes=parse_size(max_size) if max_size is not None else None,
                  percentile=parse_percentile(percentile))
