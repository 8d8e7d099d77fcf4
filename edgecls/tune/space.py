"""The search space: which architectures, input sizes, pruning ratios, fine-tune settings
and deployment choices a tuning run may try.

A ``Candidate`` is one point; its ``Signature`` is the part that decides latency and size
(family, input size, MAC reduction, precision, format, threads), so two candidates that
differ only in learning rates share one latency measurement. The space samples through
a ``Chooser`` (the study's trial: ``choose(name, options)``), asking only for the
parameters that apply: a from-scratch family has no fine-tune settings, a family
structured pruning cannot narrow has no MAC reduction; invalid combinations therefore
never start.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence

from edgecls.errors import ConfigError
from edgecls.models import list_models
from edgecls.train.model_choice import choose_model

DEFAULT_FAMILIES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
DEFAULT_SIZES = (96, 128, 160, 192, 224)
DEFAULT_MAC_REDUCTIONS = (0.0, 0.15, 0.3, 0.45)
# Families whose inverted-residual blocks edgecls.optimize.structured can narrow.
PRUNABLE = ("efficientnet_lite", "efficientnet_b0", "mobilenet_v2", "mobilenet_v3")
FORMATS = ("tflite", "onnx", "openvino")


class Chooser(Protocol):
    """What the space samples through (a study trial, or a fixed choice in tests)."""

    def choose(self, name: str, options: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class Signature:
    """What decides a candidate's latency and size on a target."""

    family: str
    size: int
    mac_reduction: float = 0.0
    precision: str = "int8"
    format: str = "tflite"
    threads: int | None = None

    def key(self) -> str:
        """A stable text key, e.g. ``efficientnet_lite0-128px-mac0.30-int8-tflite-t4``."""
        threads = f"t{self.threads}" if self.threads else "tdefault"
        return (f"{self.family}-{self.size}px-mac{self.mac_reduction:.2f}-{self.precision}-"
                f"{self.format}-{threads}")


@dataclass(frozen=True)
class Candidate:
    """One point of the space: an architecture signature and how it is trained."""

    signature: Signature
    weights: str  # "imagenet" (or a weights file) to fine-tune, "none" from scratch
    lr: float
    fine_tune_lr: float | None = None  # None from scratch (one phase)
    fine_tune_fraction: float | None = None

    @property
    def pretrained(self) -> bool:
        return self.weights != "none"

    def params(self) -> dict[str, Any]:
        """Flat JSON-ready description (the trials table's columns)."""
        return {**asdict(self.signature), "weights": self.weights, "lr": self.lr,
                "fine_tune_lr": self.fine_tune_lr, "fine_tune_fraction": self.fine_tune_fraction}

    def train_overrides(self) -> dict[str, Any]:
        """``TrainConfig`` fields this candidate sets."""
        values: dict[str, Any] = {"model": self.signature.family, "img_size": self.signature.size,
                                  "weights": self.weights, "lr": self.lr}
        if self.pretrained:
            values.update(fine_tune_lr=self.fine_tune_lr, fine_tune_fraction=self.fine_tune_fraction)
        return values


@dataclass
class SearchSpace:
    """The choices of each dimension; ``check`` refuses values that could never run."""

    families: tuple[str, ...] = DEFAULT_FAMILIES
    sizes: tuple[int, ...] = DEFAULT_SIZES
    mac_reductions: tuple[float, ...] = DEFAULT_MAC_REDUCTIONS
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    fine_tune_lrs: tuple[float, ...] = (3e-5, 1e-4, 3e-4)
    fine_tune_fractions: tuple[float, ...] = (0.2, 0.3, 0.5)
    scratch_lrs: tuple[float, ...] = (1e-3, 3e-3)
    formats: tuple[str, ...] = ("tflite",)
    threads: tuple[int | None, ...] = (None,)
    precision: str = "int8"
    weights: dict[str, str] = field(default_factory=dict)  # family -> imagenet | none | weights file

    def check(self) -> SearchSpace:
        """Validates every dimension and resolves each family's weights; returns self."""
        known = set(list_models())
        for family in self.families:
            if family not in known:
                raise ConfigError(f"unknown model family {family!r} in the search space",
                                  f"choose from: {', '.join(sorted(known))}")
        _require(self.families and self.sizes and self.formats and self.threads and self.lrs,
                 "every dimension of the search space needs at least one value")
        _require(all(32 <= s <= 1024 and s % 8 == 0 for s in self.sizes),
                 "input sizes must be multiples of 8 between 32 and 1024")
        _require(all(0.0 <= r < 0.9 for r in self.mac_reductions), "MAC reductions must be in [0, 0.9)")
        _require(all(f in FORMATS for f in self.formats), f"formats must be among {', '.join(FORMATS)}")
        _require(all(t is None or t >= 1 for t in self.threads), "thread counts must be at least 1")
        for family in self.families:
            self.weights.setdefault(family, choose_model(family, None).weights)
        return self

    def pruning_choices(self, family: str) -> tuple[float, ...]:
        """The MAC reductions that apply to ``family`` (only 0 when it cannot be pruned)."""
        if not family.startswith(PRUNABLE):
            return (0.0,)
        return tuple(sorted(set(self.mac_reductions) | {0.0}))

    def sample(self, chooser: Chooser) -> Candidate:
        """One candidate; only the parameters that apply to the chosen family are asked."""
        family = chooser.choose("family", self.families)
        pruning = self.pruning_choices(family)
        signature = Signature(
            family=family, size=int(chooser.choose("size", self.sizes)),
            mac_reduction=float(chooser.choose("mac_reduction", pruning)) if len(pruning) > 1 else 0.0,
            precision=self.precision, format=chooser.choose("format", self.formats),
            threads=chooser.choose("threads", self.threads))
        weights = self.weights.get(family, "none")
        if weights == "none":
            return Candidate(signature, "none", float(chooser.choose("scratch_lr", self.scratch_lrs)))
        return Candidate(signature, weights, lr=float(chooser.choose("lr", self.lrs)),
                         fine_tune_lr=float(chooser.choose("fine_tune_lr", self.fine_tune_lrs)),
                         fine_tune_fraction=float(chooser.choose("fine_tune_fraction",
                                                                 self.fine_tune_fractions)))

    def signatures(self) -> list[Signature]:
        """Every architecture signature of the space (what latency is measured for)."""
        return [Signature(f, s, m, self.precision, fmt, t)
                for f in self.families for s, m, fmt, t in itertools.product(
                    self.sizes, self.pruning_choices(f), self.formats, self.threads)]

    def size(self) -> int:
        """How many distinct candidates the space holds (as ``sample`` draws them)."""
        total = 0
        for family in set(self.families):
            training = (len(set(self.scratch_lrs)) if self.weights.get(family, "none") == "none" else
                        len(set(self.lrs)) * len(set(self.fine_tune_lrs)) * len(set(self.fine_tune_fractions)))
            total += (len(set(self.sizes)) * len(self.pruning_choices(family)) * len(set(self.formats))
                      * len(set(self.threads)) * training)
        return total

    def describe(self) -> dict[str, Any]:
        """JSON-ready, saved with the study so ``--resume`` searches the same space."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_description(cls, values: dict[str, Any]) -> SearchSpace:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise ConfigError(f"invalid search space: {message}", "fix the tune options")
