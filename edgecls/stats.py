"""Paired comparisons of two classifiers on the same images, and binomial intervals.

numpy only (bottom layer): the export gate, bench and the report all use it, on a
workstation or a device.

A paired comparison reduces to four counts per image set: both right, reference right
and candidate wrong (``right_to_wrong``), the reverse (``wrong_to_right``), both wrong.
The accuracy drop is ``(right_to_wrong - wrong_to_right) / n``; its 95 % interval is
Tango's score interval for a difference of paired proportions (Tango 1998, Stat. Med.
17:891): the set of drops that a score test on the discordant pairs does not reject.
Unlike a Wald or bootstrap interval it stays honest with few or no discordant pairs
(0 changed predictions out of 261 gives about +-1.45 pp, not a zero-width interval).

An accuracy budget is a ``DropBudget``: its unit is explicit (percentage points, what
``--max-drop`` and YAML take; ``fraction`` for NNCF's absolute ``max_drop``), and it is
the one place that decides whether a drop is within budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 %
WITHIN, OVER, UNRESOLVED = "within", "over", "unresolved"
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no resolved difference"
_BISECT_STEPS = 200
_MAX_IMAGES = 10_000_000
_SLACK_PP = 1e-9  # floating-point slack of every budget comparison, in percentage points


@dataclass(frozen=True)
class DropBudget:
    """The largest accepted accuracy drop of a candidate model vs its reference.

    Attributes:
        pp: the budget in percentage points (1.0 = one point of top-1 accuracy).
    """

    pp: float

    @classmethod
    def from_fraction(cls, fraction: float) -> DropBudget:
        """The budget NNCF's absolute ``max_drop`` states (0.01 = one point)."""
        return cls(100.0 * fraction)

    @property
    def fraction(self) -> float:
        """The budget as a fraction of accuracy, as NNCF's absolute ``max_drop`` takes it."""
        return self.pp / 100.0

    def allows(self, drop_pp: float) -> bool:
        """True when a drop of ``drop_pp`` points is within the budget."""
        return drop_pp <= self.pp + _SLACK_PP

    def exceeded_by(self, drop_pp: float) -> bool:
        """True when a drop of ``drop_pp`` points is over the budget (False for NaN, too)."""
        return drop_pp > self.pp + _SLACK_PP


NO_DROP = DropBudget(0.0)  # exceeded by a drop that is real: an interval's low end above zero


@dataclass(frozen=True)
class PairedCounts:
    """How the predictions of a reference and a candidate model compare, image by image."""

    both_right: int
    right_to_wrong: int  # reference right, candidate wrong
    wrong_to_right: int  # reference wrong, candidate right
    both_wrong: int

    @property
    def images(self) -> int:
        """Number of compared images."""
        return self.both_right + self.right_to_wrong + self.wrong_to_right + self.both_wrong

    @property
    def drop(self) -> float:
        """Reference accuracy minus candidate accuracy (a fraction; NaN without images)."""
        n = self.images
        return (self.right_to_wrong - self.wrong_to_right) / n if n else float("nan")

    def scaled(self, images: float) -> tuple[float, float, float]:
        """(right_to_wrong, wrong_to_right, images) projected to ``images`` at the same rates."""
        factor = images / self.images
        return self.right_to_wrong * factor, self.wrong_to_right * factor, float(images)


@dataclass(frozen=True)
class PairedDrop:
    """An accuracy drop in percentage points with its 95 % interval and its counts."""

    counts: PairedCounts
    drop_pp: float
    low_pp: float
    high_pp: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (percentage points rounded to 4 decimals)."""
        return {"drop_pp": round(self.drop_pp, 4),
                "interval_pp": [round(self.low_pp, 4), round(self.high_pp, 4)],
                "images": self.counts.images,
                "right_to_wrong": self.counts.right_to_wrong,
                "wrong_to_right": self.counts.wrong_to_right}


def paired_counts(reference_correct: np.ndarray, candidate_correct: np.ndarray) -> PairedCounts:
    """The four paired counts of two boolean per-image correctness arrays."""
    ref = np.asarray(reference_correct, dtype=bool)
    cand = np.asarray(candidate_correct, dtype=bool)
    if ref.shape != cand.shape or ref.ndim != 1:
        raise ValueError("paired comparison needs two 1-D arrays of the same length")
    return PairedCounts(both_right=int(np.sum(ref & cand)), right_to_wrong=int(np.sum(ref & ~cand)),
                        wrong_to_right=int(np.sum(~ref & cand)), both_wrong=int(np.sum(~ref & ~cand)))


def paired_drop(counts: PairedCounts, z: float = Z95) -> PairedDrop:
    """The drop of ``counts`` with Tango's score interval, in percentage points."""
    if counts.images == 0:
        nan = float("nan")
        return PairedDrop(counts, nan, nan, nan)
    low, high = tango_interval(counts.right_to_wrong, counts.wrong_to_right, counts.images, z)
    return PairedDrop(counts, 100.0 * counts.drop, 100.0 * low, 100.0 * high)


def compare_paired(reference_correct: np.ndarray, candidate_correct: np.ndarray,
                   z: float = Z95) -> PairedDrop:
    """Drop of the candidate against the reference on the same images, with its interval."""
    return paired_drop(paired_counts(reference_correct, candidate_correct), z)


def per_class_drops(reference_correct: np.ndarray, candidate_correct: np.ndarray,
                    labels: np.ndarray, num_classes: int, z: float = Z95) -> list[PairedDrop | None]:
    """``compare_paired`` restricted to each class's images (None for a class without any)."""
    labels = np.asarray(labels)
    out: list[PairedDrop | None] = []
    for index in range(num_classes):
        mask = labels == index
        out.append(compare_paired(np.asarray(reference_correct)[mask],
                                  np.asarray(candidate_correct)[mask], z) if mask.any() else None)
    return out


def tango_interval(right_to_wrong: float, wrong_to_right: float, images: float,
                   z: float = Z95) -> tuple[float, float]:
    """Tango's score interval for the paired difference ``(b - c) / n`` (fractions).

    Counts may be fractional (used to project a comparison to another sample size).
    """
    b, c, n = float(right_to_wrong), float(wrong_to_right), float(images)
    point = (b - c) / n

    def in_interval(delta: float) -> bool:
        return abs(_tango_score(b, c, n, delta)) <= z

    return _edge(in_interval, point, -1.0), _edge(in_interval, point, 1.0)


def _tango_score(b: float, c: float, n: float, delta: float) -> float:
    """Score statistic of H0: drop == delta, with the discordant cell probabilities
    re-estimated by maximum likelihood under H0 (closed form of a quadratic)."""
    w = -b - c + (2.0 * n - b + c) * delta
    q = (math.sqrt(max(w * w + 8.0 * n * c * delta * (1.0 - delta), 0.0)) - w) / (4.0 * n)
    variance = n * (2.0 * q + delta * (1.0 - delta))
    numerator = b - c - n * delta
    if variance <= 1e-300:
        return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def _edge(in_interval: Callable[[float], bool], inside: float, outside: float) -> float:
    """The interval's boundary between a value ``inside`` it and a domain edge ``outside``
    (the score statistic is monotone in the drop, so the boundary is unique)."""
    if in_interval(outside):
        return outside
    for _ in range(_BISECT_STEPS):
        middle = 0.5 * (inside + outside)
        if in_interval(middle):
            inside = middle
        else:
            outside = middle
        if abs(outside - inside) < 1e-13:
            break
    return 0.5 * (inside + outside)


def wilson_interval(successes: float, trials: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (fractions; (nan, nan) without trials)."""
    if trials <= 0:
        return float("nan"), float("nan")
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2.0 * trials)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def budget_decision(drop_pp: float, low_pp: float, high_pp: float, budget_pp: float) -> str:
    """Where a drop stands against a budget, given its interval.

    Returns:
        ``OVER`` when the estimate is over budget and the drop is real (the interval
        excludes zero); ``WITHIN`` when the estimate is within budget and the sample
        resolves it (the interval lies within the budget or is no wider than it);
        ``UNRESOLVED`` otherwise (too few images to tell).
    """
    budget = DropBudget(budget_pp)
    if budget.exceeded_by(drop_pp) and NO_DROP.exceeded_by(low_pp):
        return OVER
    if budget.allows(drop_pp) and (budget.allows(high_pp) or budget.allows(high_pp - low_pp)):
        return WITHIN
    return UNRESOLVED


def difference_verdict(drop: PairedDrop) -> str:
    """Whether a candidate is better or worse than its reference: ``budget_decision`` at
    a zero budget (the gate's rule), so a difference counts only when its interval
    excludes zero.

    Returns:
        ``WORSE`` (the drop is real), ``BETTER`` (the gain is real: the whole interval
        lies below zero) or ``NO_DIFFERENCE``.
    """
    if math.isnan(drop.drop_pp):
        return NO_DIFFERENCE
    decision = budget_decision(drop.drop_pp, drop.low_pp, drop.high_pp, 0.0)
    return {OVER: WORSE, WITHIN: BETTER}.get(decision, NO_DIFFERENCE)
def smallest_budget_within(drop_pp: float, low_pp: float, high_pp: float,
                           step_pp: float = 0.1) -> float | None:
    """The smallest budget (in pp, rounded up to ``step_pp``) that this very interval
    resolves as within budget by ``budget_decision``: what the images at hand can vouch
    for. None without an interval (no images)."""
    if any(math.isnan(v) for v in (drop_pp, low_pp, high_pp)):
        return None

    def within(budget: float) -> bool:
        return budget_decision(drop_pp, low_pp, high_pp, budget) == WITHIN

    low, high = 0.0, max(100.0, high_pp - low_pp, drop_pp)  # within at high: wider than any interval
    if within(low):
        return 0.0
    for _ in range(_BISECT_STEPS):  # ``within`` is monotone in the budget
        middle = 0.5 * (low + high)
        low, high = (low, middle) if within(middle) else (middle, high)
        if high - low < 1e-9:
            break
    budget = round(math.ceil(round(high / step_pp, 6)) * step_pp, 6)
    return budget if within(budget) else round(budget + step_pp, 6)


def images_to_resolve(counts: PairedCounts, budget_pp: float, z: float = Z95) -> int | None:
    """Held-out images that would resolve ``budget_pp`` if the observed rates held.

    Returns:
        The smallest such number (at least ``counts.images``), or None when even
        ten million images would not (a drop sitting exactly on the budget).
    """
    if counts.images == 0:
        return None

    def resolved(n: float) -> bool:
        b, c, n = counts.scaled(n)
        low, high = tango_interval(b, c, n, z)
        return budget_decision(100.0 * (b - c) / n, 100.0 * low, 100.0 * high,
                               budget_pp) != UNRESOLVED

    low, high = counts.images, counts.images
    while not resolved(high):
        if high >= _MAX_IMAGES:
            return None
        low, high = high, min(2 * high, _MAX_IMAGES)
    while high - low > max(1, low // 100):  # 1 % precision is plenty for a hint
        middle = (low + high) // 2
        low, high = (low, middle) if resolved(middle) else (middle, high)
    return int(high)
