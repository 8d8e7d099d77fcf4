"""Paired-comparison statistics checked against brute-force computations."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from edgecls.stats import (
    BETTER,
    NO_DIFFERENCE,
    OVER,
    UNRESOLVED,
    WITHIN,
    WORSE,
    Z95,
    DropBudget,
    PairedCounts,
    budget_decision,
    compare_paired,
    difference_verdict,
    images_to_resolve,
    paired_counts,
    paired_drop,
    smallest_budget_within,
    per_class_drops,
    tango_interval,
    wilson_interval,
)


def _constrained_score(b: int, c: int, n: int, delta: float, grid: int = 4001) -> float:
    """Score statistic of H0: p_b - p_c = delta, with (p_b, p_c) re-estimated by a brute
    grid search of the multinomial likelihood instead of the closed form."""
    q_low, q_high = max(0.0, -delta), (1.0 - delta) / 2.0
    q = np.linspace(q_low, q_high, grid)[1:-1]
    rest = 1.0 - 2.0 * q - delta
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = (b * np.log(q + delta) if b else 0) + (c * np.log(q) if c else 0) + \
                 ((n - b - c) * np.log(rest) if n - b - c else 0)
    best = q[int(np.nanargmax(loglik))]
    variance = n * (2.0 * best + delta * (1.0 - delta))
    return (b - c - n * delta) / math.sqrt(variance)


@pytest.mark.parametrize("b, c, n", [(0, 0, 20), (3, 1, 25), (5, 0, 30), (2, 6, 40), (7, 7, 15)])
def test_tango_interval_matches_a_grid_search_of_the_score_test(b, c, n):
    low, high = tango_interval(b, c, n)
    deltas = np.linspace(-0.999, 0.999, 1999)
    accepted = [d for d in deltas if abs(_constrained_score(b, c, n, d)) <= Z95]
    step = deltas[1] - deltas[0]
    assert min(accepted) == pytest.approx(low, abs=1.5 * step)
    assert max(accepted) == pytest.approx(high, abs=1.5 * step)
    assert low <= (b - c) / n <= high


def test_zero_changes_still_give_an_honest_interval():
    """0 of n changed: the bound is z^2 / (n + z^2) (like the rule of three), not zero width."""
    low, high = tango_interval(0, 0, 261)
    assert high == pytest.approx(Z95 ** 2 / (261 + Z95 ** 2), rel=1e-6)
    assert low == pytest.approx(-high, rel=1e-6)


def _coverage(n: int, p_b: float, p_c: float) -> float:
    """Exact probability, over every multinomial outcome, that the interval holds p_b - p_c."""
    total = 0.0
    for b in range(n + 1):
        for c in range(n + 1 - b):
            rest = n - b - c
            log_p = (math.lgamma(n + 1) - math.lgamma(b + 1) - math.lgamma(c + 1)
                     - math.lgamma(rest + 1) + b * math.log(p_b) + c * math.log(p_c)
                     + rest * math.log(1 - p_b - p_c))
            low, high = tango_interval(b, c, n)
            if low - 1e-9 <= p_b - p_c <= high + 1e-9:
                total += math.exp(log_p)
    return total


@pytest.mark.parametrize("n, p_b, p_c", [(30, 0.1, 0.1), (40, 0.15, 0.05), (25, 0.3, 0.1)])
def test_interval_covers_the_true_drop_about_95_percent_of_the_time(n, p_b, p_c):
    assert 0.93 <= _coverage(n, p_b, p_c) <= 0.99


def test_interval_agrees_with_a_large_paired_bootstrap():
    rng = np.random.default_rng(0)
    n = 600
    reference = np.ones(n, dtype=bool)
    candidate = np.ones(n, dtype=bool)
    reference[:40] = False  # both wrong
    candidate[:40] = False
    candidate[40:64] = False  # 24 right -> wrong
    reference[64:72] = False  # 8 wrong -> right
    drop = compare_paired(reference, candidate)
    index = rng.integers(0, n, size=(20000, n))
    boot = 100.0 * (reference[index].mean(axis=1) - candidate[index].mean(axis=1))
    low, high = np.percentile(boot, [2.5, 97.5])
    assert drop.drop_pp == pytest.approx(100 * 16 / 600)
    assert drop.low_pp == pytest.approx(low, abs=0.35)
    assert drop.high_pp == pytest.approx(high, abs=0.35)


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (86, 100), (50, 50)])
def test_wilson_interval_matches_a_grid_search(k, n):
    low, high = wilson_interval(k, n)
    grid = np.linspace(0, 1, 200001)
    accepted = grid[np.abs(k / n - grid) <= Z95 * np.sqrt(grid * (1 - grid) / n)]
    assert low == pytest.approx(accepted.min(), abs=2e-5)
    assert high == pytest.approx(accepted.max(), abs=2e-5)


def test_paired_counts_and_per_class_changes():
    reference = np.array([1, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    candidate = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=bool)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    counts = paired_counts(reference, candidate)
    assert counts == PairedCounts(both_right=3, right_to_wrong=2, wrong_to_right=1, both_wrong=2)
    per_class = per_class_drops(reference, candidate, labels, num_classes=3)
    assert per_class[0].counts.right_to_wrong == 1 and per_class[0].counts.wrong_to_right == 1
    assert per_class[0].drop_pp == 0.0
    assert per_class[1].drop_pp == pytest.approx(25.0) and per_class[2] is None
    assert per_class[1].to_dict()["right_to_wrong"] == 1


def test_budget_decision():
    assert budget_decision(0.2, -0.1, 0.5, 1.0) == WITHIN  # whole interval within budget
    assert budget_decision(0.8, 0.4, 1.3, 1.0) == WITHIN  # narrower than the budget
    assert budget_decision(0.5, -1.5, 2.5, 1.0) == UNRESOLVED  # too wide to tell
    assert budget_decision(1.5, -0.5, 3.5, 1.0) == UNRESOLVED  # over, but maybe noise
    assert budget_decision(1.5, 0.2, 2.8, 1.0) == OVER  # over and real
    assert budget_decision(3.0, 2.0, 4.0, 1.0) == OVER


@pytest.mark.parametrize("counts", [PairedCounts(200, 8, 5, 48), PairedCounts(250, 2, 1, 8),
                                    PairedCounts(90, 0, 0, 10)])
def test_images_to_resolve_is_where_the_projected_verdict_settles(counts):
    needed = images_to_resolve(counts, 1.0)
    assert needed is not None and needed > counts.images

    def decision(n: float) -> str:
        b, c, n = counts.scaled(n)
        low, high = tango_interval(b, c, n)
        return budget_decision(100 * (b - c) / n, 100 * low, 100 * high, 1.0)

    assert decision(needed) != UNRESOLVED
    assert decision(0.97 * needed) == UNRESOLVED


@pytest.mark.parametrize("counts", [PairedCounts(180, 0, 1, 1), PairedCounts(180, 1, 0, 1),
                                    PairedCounts(200, 8, 5, 48), PairedCounts(90, 0, 0, 10)])
def test_smallest_budget_within_is_where_this_interval_settles(counts):
    """The budget the images at hand resolve: within at it, unresolved a step below."""
    drop = paired_drop(counts)
    budget = smallest_budget_within(drop.drop_pp, drop.low_pp, drop.high_pp)
    assert budget is not None and budget > 1.0
    assert budget_decision(drop.drop_pp, drop.low_pp, drop.high_pp, budget) == WITHIN
    assert budget_decision(drop.drop_pp, drop.low_pp, drop.high_pp, budget - 0.1) == UNRESOLVED


def test_empty_comparisons():
    empty = paired_drop(PairedCounts(0, 0, 0, 0))
    assert math.isnan(empty.drop_pp) and images_to_resolve(empty.counts, 1.0) is None
    assert smallest_budget_within(empty.drop_pp, empty.low_pp, empty.high_pp) is None
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        paired_counts(np.ones(3, bool), np.ones(4, bool))


def test_drop_budget_states_its_unit_and_compares_with_one_slack() -> None:
    budget = DropBudget(1.0)
    assert budget.fraction == 0.01 and DropBudget.from_fraction(0.005) == DropBudget(0.5)
    assert budget.allows(1.0) and budget.allows(1.0 + 1e-12) and not budget.exceeded_by(1.0 + 1e-12)
    assert budget.exceeded_by(1.001) and not budget.allows(1.001)
    assert not budget.allows(float("nan")) and not budget.exceeded_by(float("nan"))


def test_quantization_budget_refuses_a_bare_number() -> None:
    from edgecls.export import onnx_quant
    from edgecls.export.base import QuantizationConfig

    with pytest.raises(TypeError, match="DropBudget"):
        QuantizationConfig(precision="int8", max_drop=0.01)  # type: ignore[arg-type]
    quant = QuantizationConfig.for_int8(np.zeros((1, 8, 8, 3), np.uint8), method="nncf_accuracy_control",
                                        max_drop=DropBudget(0.5))
    assert onnx_quant.settings(quant)["max_drop"] == 0.005  # the manifest keeps NNCF's fraction


def test_budget_slack_is_written_only_in_stats() -> None:
    """"Within budget?" is DropBudget's question: no other module adds its own epsilon."""
    package = Path(__file__).resolve().parents[1] / "edgecls"
    found = [f"{path.relative_to(package.parent)}:{node.lineno}"
             for path in sorted(package.rglob("*.py")) if path.name != "stats.py"
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Constant) and node.value == 1e-9]
    assert not found, found
def test_difference_verdict_counts_a_change_only_when_its_interval_excludes_zero():
    def verdict(b: int, c: int, n: int) -> str:  # b: reference right, candidate wrong
        return difference_verdict(paired_drop(PairedCounts(n - b - c, b, c, 0)))

    assert verdict(0, 12, 100) == BETTER and verdict(12, 0, 100) == WORSE
    assert verdict(3, 5, 100) == NO_DIFFERENCE  # two more right out of eight changes: noise
    assert verdict(0, 0, 100) == NO_DIFFERENCE
    assert difference_verdict(paired_drop(PairedCounts(0, 0, 0, 0))) == NO_DIFFERENCE
