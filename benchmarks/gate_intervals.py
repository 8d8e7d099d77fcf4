"""How far the export gate's verdicts can be trusted, computed exactly (no data needed).

1. Coverage: the probability that the 95 % interval holds the true drop, by exact
   enumeration of every (right_to_wrong, wrong_to_right) outcome of n paired images,
   for the gate's Tango score interval and for the naive Wald interval on the same counts.
2. What a held-out set can resolve: for a 1 pp budget, the interval's half-width and the
   images needed at typical INT8 change rates (the issue's waste-sorting case: 261 test
   images vs 522 val + test).

    .venv/bin/python benchmarks/gate_intervals.py
"""

from __future__ import annotations

import math

from edgecls.stats import (
    Z95,
    PairedCounts,
    budget_decision,
    images_to_resolve,
    paired_drop,
    tango_interval,
)


def wald_interval(b: int, c: int, n: int) -> tuple[float, float]:
    """The textbook paired Wald interval (what a quick implementation would use)."""
    d = (b - c) / n
    se = math.sqrt(max((b + c) / n - d * d, 0.0) / n)
    return d - Z95 * se, d + Z95 * se


def coverage(n: int, p_b: float, p_c: float, interval) -> float:
    """Exact coverage over outcomes carrying all but ~1e-9 of the probability."""
    total = 0.0
    limit = int(n * (p_b + p_c) + 12 * math.sqrt(n * (p_b + p_c)) + 10)
    for b in range(min(n, limit) + 1):
        for c in range(min(n - b, limit) + 1):
            rest = n - b - c
            log_p = (math.lgamma(n + 1) - math.lgamma(b + 1) - math.lgamma(c + 1)
                     - math.lgamma(rest + 1) + b * math.log(p_b) + c * math.log(p_c)
                     + rest * math.log(1 - p_b - p_c))
            low, high = interval(b, c, n)
            if low - 1e-12 <= p_b - p_c <= high + 1e-12:
                total += math.exp(log_p)
    return total


def main() -> None:
    print("Exact coverage of 95 % intervals for the paired drop (nominal 0.950)")
    print("| images | right->wrong rate | wrong->right rate | true drop pp | Tango | Wald |")
    print("|---|---|---|---|---|---|")
    for n in (100, 261, 522):
        for p_b, p_c in ((0.01, 0.002), (0.02, 0.01), (0.04, 0.03), (0.005, 0.005)):
            tango = coverage(n, p_b, p_c, tango_interval)
            wald = coverage(n, p_b, p_c, wald_interval)
            print(f"| {n} | {p_b:.3f} | {p_c:.3f} | {100 * (p_b - p_c):+.1f} | {tango:.3f} | "
                  f"{wald:.3f} |")
    print("\nWhat a held-out set resolves against a 1 pp budget (observed counts)")
    print("| held-out images | right->wrong | wrong->right | drop pp | 95 % interval pp | "
          "verdict | images needed |")
    print("|---|---|---|---|---|---|---|")
    cases = [(261, 8, 5), (522, 16, 10), (261, 0, 0), (522, 0, 0), (261, 4, 2), (3925, 30, 12),
             (3925, 70, 20), (863, 9, 4)]
    for n, b, c in cases:
        counts = PairedCounts(n - b - c, b, c, 0)
        drop = paired_drop(counts)
        decision = budget_decision(drop.drop_pp, drop.low_pp, drop.high_pp, 1.0)
        needed = images_to_resolve(counts, 1.0) if decision == "unresolved" else None
        print(f"| {n} | {b} | {c} | {drop.drop_pp:+.2f} | [{drop.low_pp:+.2f}, {drop.high_pp:+.2f}] "
              f"| {decision} | {needed if needed else '-'} |")


if __name__ == "__main__":
    main()
