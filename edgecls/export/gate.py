"""The export gate: a verdict that knows how many images it stands on.

Every artifact is compared with the float model on the same held-out images
(``export.validate``); the drop comes with a 95 % interval (``edgecls.stats``). Verdicts:

- ``passed``: the estimate is within budget and the sample resolves it (the interval
  lies within the budget, or is no wider than the budget).
- ``failed``: the estimate is over budget and the drop is real (the interval excludes
  zero); also when a class guarded by ``max_class_drop`` drops that way.
- ``inconclusive``: the interval is wider than the budget and straddles it: too few
  held-out images to tell. The note says what the images at hand can vouch for (the
  agreement with float, the smallest budget they resolve) and how many held-out images
  would resolve the budget asked for, against how many the dataset has.

Only ``failed`` makes ``edgecls export`` exit 2, unless ``strict`` also refuses
``inconclusive``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgecls.export.validate import Validation
from edgecls.stats import (
    OVER,
    UNRESOLVED,
    WITHIN,
    DropBudget,
    PairedDrop,
    budget_decision,
    images_to_resolve,
    smallest_budget_within,
)

PASSED, FAILED, INCONCLUSIVE = "passed", "failed", "inconclusive"
VERDICT_OF = {WITHIN: PASSED, OVER: FAILED, UNRESOLVED: INCONCLUSIVE}
METHOD = ("paired float vs artifact on the same held-out images; 95 % Tango score interval "
          "on the changed predictions")


@dataclass
class ClassFlag:
    """A class whose estimated drop exceeds ``max_class_drop``."""

    name: str
    verdict: str  # failed (real drop) or inconclusive (could be noise)
    drop: PairedDrop

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        return {"name": self.name, "verdict": self.verdict, **self.drop.to_dict()}


@dataclass
class GateResult:
    """The verdict on one artifact and what it rests on."""

    verdict: str
    passed: bool  # what the exit code follows: not failed (and not inconclusive if strict)
    drop: PairedDrop
    note: str
    images_needed: int | None = None
    worst_class: tuple[str, PairedDrop] | None = None
    flagged_classes: list[ClassFlag] = field(default_factory=list)
    tuning_images: int = 0  # held-out images the artifact was tuned on, left out of the drop
    changed_predictions: int = 0  # images whose top-1 differs from float's
    smallest_budget_pp: float | None = None  # the smallest budget these images resolve
    dataset_images: int | None = None  # images in the whole dataset (all splits)


def judge(result: Validation, max_drop_pp: float, max_class_drop_pp: float | None = None,
          strict: bool = False, tuning_images: int = 0,
          dataset_images: int | None = None) -> GateResult:
    """The gate's verdict on one validated artifact; ``tuning_images`` held-out images
    tuned it (accuracy-controlled quantization) and are not among those it was judged on;
    ``dataset_images`` (all splits) tells an inconclusive note whether more are at hand."""
    assert result.paired is not None, "validate with export.validate.compare"
    drop = result.paired
    verdict = VERDICT_OF[budget_decision(drop.drop_pp, drop.low_pp, drop.high_pp, max_drop_pp)]
    needed = images_to_resolve(drop.counts, max_drop_pp) if verdict == INCONCLUSIVE else None
    flags = _class_flags(result, max_class_drop_pp) if max_class_drop_pp is not None else []
    verdict = _combined(verdict, [f.verdict for f in flags])
    needed = _needed_with_classes(needed, flags, result.images, max_class_drop_pp)
    passed = verdict == PASSED or (verdict == INCONCLUSIVE and not strict)
    gate = GateResult(verdict=verdict, passed=passed, drop=drop, note="", images_needed=needed,
                      worst_class=_worst_class(result), flagged_classes=flags,
                      tuning_images=tuning_images, dataset_images=dataset_images,
                      changed_predictions=round((1.0 - result.agreement) * result.images),
                      smallest_budget_pp=smallest_budget_within(drop.drop_pp, drop.low_pp,
                                                                drop.high_pp))
    gate.note = _note(gate, max_drop_pp, max_class_drop_pp)
    return gate


def _class_flags(result: Validation, budget_pp: float) -> list[ClassFlag]:
    flags = []
    for name, drop in result.per_class.items():
        decision = budget_decision(drop.drop_pp, drop.low_pp, drop.high_pp, budget_pp)
        if DropBudget(budget_pp).exceeded_by(drop.drop_pp):
            flags.append(ClassFlag(name, VERDICT_OF[decision], drop))
    return flags


def _combined(overall: str, class_verdicts: list[str]) -> str:
    verdicts = [overall, *class_verdicts]
    for verdict in (FAILED, INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return PASSED


def _needed_with_classes(needed: int | None, flags: list[ClassFlag], total: int,
                         budget_pp: float | None) -> int | None:
    """Held-out images (all classes, same class mix) that would settle every open question."""
    for flag in flags:
        if flag.verdict != INCONCLUSIVE or budget_pp is None:
            continue
        for_class = images_to_resolve(flag.drop.counts, budget_pp)
        if for_class is not None:
            scaled = -(-for_class * total // flag.drop.counts.images)
            needed = max(needed or 0, scaled)
    return needed


def _worst_class(result: Validation) -> tuple[str, PairedDrop] | None:
    if not result.per_class:
        return None
    name = max(result.per_class, key=lambda n: (result.per_class[n].drop_pp,
                                                result.per_class[n].counts.right_to_wrong))
    return name, result.per_class[name]


def _note(gate: GateResult, budget_pp: float, class_budget_pp: float | None) -> str:
    """One line saying what the verdict rests on."""
    d = gate.drop
    stated = f"drop {d.drop_pp:+.2f} pp [{d.low_pp:+.2f}, {d.high_pp:+.2f}] on {d.counts.images} " \
             f"held-out images"
    if gate.tuning_images:
        stated += f" (not on the {gate.tuning_images} that tuned its accuracy-controlled quantization)"
    real_classes = [f for f in gate.flagged_classes if f.verdict == FAILED]
    if real_classes:
        f = real_classes[0]
        return (f"class {f.name} drops {f.drop.drop_pp:.2f} pp [{f.drop.low_pp:+.2f}, "
                f"{f.drop.high_pp:+.2f}] ({f.drop.counts.right_to_wrong} right->wrong, "
                f"{f.drop.counts.wrong_to_right} wrong->right of {f.drop.counts.images}), "
                f"really over --max-class-drop {class_budget_pp:g}")
    if gate.verdict == FAILED:
        return f"{stated}: over the {budget_pp:g} pp budget, and the drop is real"
    if gate.verdict == PASSED:
        return f"{stated}: within the {budget_pp:g} pp budget"
    more = _more_images(gate)
    if any(f.verdict == INCONCLUSIVE for f in gate.flagged_classes):
        names = ", ".join(f.name for f in gate.flagged_classes if f.verdict == INCONCLUSIVE)
        return (f"{stated}; class {names} over --max-class-drop {class_budget_pp:g} but "
                f"possibly noise: too few images to tell; {more}")
    return (f"{stated}: too few to tell against the {budget_pp:g} pp budget; "
            f"{_at_hand(gate)}; {more}")


def _at_hand(gate: GateResult) -> str:
    """What the images already held out can say: agreement and the budget they resolve."""
    images = gate.drop.counts.images
    changed = (f"{gate.changed_predictions} prediction{'s' if gate.changed_predictions != 1 else ''} "
               f"in {images} changed vs float")
    if gate.smallest_budget_pp is None:
        return changed
    return f"{changed}; these images resolve --max-drop {gate.smallest_budget_pp:g} or more"


def _more_images(gate: GateResult) -> str:
    """How many held-out images would resolve the budget, against what the dataset has."""
    needed = gate.images_needed
    if not needed:
        return "no realistic number of images would resolve it (the drop sits on the budget)"
    total = gate.dataset_images
    if total is None:
        return f"about {needed:,} held-out images would resolve it"
    if needed >= total:
        return (f"about {needed:,} held-out images would resolve it, more than the {total:,} the "
                "dataset has in all: add images")
    return (f"about {needed:,} held-out images would resolve it (the dataset has {total:,} "
            "in all: hold out a larger share of it, or add images)")
