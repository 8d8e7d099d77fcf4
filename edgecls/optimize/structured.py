"""Structured channel pruning: narrower inverted-residual / MBConv blocks, not sparser ones.

Magnitude pruning (``edgecls.optimize.prune``) zeroes weights but a CPU runtime still
does the same work. Here whole expansion channels are removed from every block the
channel graph finds (``edgecls.optimize.channel_graph``): the expand conv and its
BatchNorm, the depthwise conv and its BatchNorm, the squeeze-and-excitation convs and
the project conv's inputs shrink together, so the block is cheaper in every runtime.

How channels are ranked and chosen is in ``selection``, how the narrowed model is
repaired and fine-tuned in ``refit``, how its size and MACs are counted in ``cost``;
this module holds the options, the report and the run that strings them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgecls.data.calibration import sample_items
from edgecls.data.pipeline import load_arrays
from edgecls.errors import ConfigError
from edgecls.optimize.cost import ModelCost, model_cost
from edgecls.optimize.finetune import (EpochHook, open_pruning_job, top1_accuracy,
                                       write_pruned_run)
from edgecls.optimize.refit import finetune, repair
from edgecls.optimize.selection import CRITERIA, plan_with_ratio, prune_channels

STRUCTURED_SCHEMA_VERSION = 1
CALIBRATION_IMAGES = 512  # training images for energy scores, reconstruction, BN statistics


@dataclass
class StructuredConfig:
    """Options of one ``edgecls prune --structured`` call.

    Attributes:
        ratio: share of expansion channels to remove (0 <= ratio < 1).
        mac_reduction: if set, the ratio is chosen for this share fewer MACs instead.
        criterion: channel importance, ``energy``, ``l1``, ``l2`` or ``bn`` (``selection`` module doc).
        per_block: the same ratio in every block instead of one global threshold.
        reconstruct: refit the convs reading each block by least squares.
        epochs: fine-tune epochs after pruning (0: none); the weights that score best on
            the validation split (before or after any epoch) are kept.
        batch_size: fine-tune batch size.
        learning_rate: peak Adam learning rate of the fine-tune (cosine decay to 0).
        distill: fine-tune with knowledge distillation from the unpruned model.
        temperature: distillation softmax temperature.
        alpha: weight of the cross-entropy on labels; ``1 - alpha`` weights the KL term.
        augment: augment the fine-tune images like training does.
    """

    ratio: float = 0.3
    mac_reduction: float | None = None
    criterion: str = "energy"
    per_block: bool = False
    reconstruct: bool = True
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    distill: bool = False
    temperature: float = 4.0
    alpha: float = 0.5
    augment: bool = True

    def check(self) -> None:
        """Raises a user error for values that cannot work."""
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"--ratio must be in [0, 1), got {self.ratio}",
                              "e.g. --ratio 0.3 removes 30% of the expansion channels")
        if self.mac_reduction is not None and not 0.0 < self.mac_reduction < 0.9:
            raise ConfigError(f"--mac-reduction must be in (0, 0.9), got {self.mac_reduction}",
                              "e.g. --mac-reduction 0.3 for 30% fewer multiply-accumulates")
        if self.criterion not in CRITERIA:
            raise ConfigError(f"unknown --criterion {self.criterion!r}",
                              f"use one of: {', '.join(CRITERIA)}")
        if self.epochs < 0 or self.batch_size < 1 or self.temperature <= 0:
            raise ConfigError("--epochs must be >= 0, batch size >= 1, temperature > 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"distillation alpha must be in [0, 1], got {self.alpha}")

    def run(self, run_dir: Path, out_dir: Path,
            on_epoch: EpochHook | None = None) -> StructuredReport:
        """``structured_prune_run`` with these options (the ``PruningMethod`` interface)."""
        return structured_prune_run(run_dir, out_dir, self, on_epoch)


@dataclass
class StructuredReport:
    """What structured pruning did, written as ``prune_report.json`` into the output run."""

    source_run: str
    ratio: float
    criterion: str
    per_block: bool
    distill: bool
    epochs: int
    before: ModelCost
    after: ModelCost
    accuracy_before: float  # top-1 on the ``scored_on`` subset (test by default)
    accuracy_pruned: float  # right after pruning, before the fine-tune
    accuracy_after: float
    reconstruct: bool = True
    reconstruction_error: dict[str, float] = field(default_factory=dict)  # block -> rel. error
    val_accuracy: list[float] = field(default_factory=list)  # before and after each epoch
    best_epoch: int = 0  # the fine-tune epoch whose weights were kept (0: none helped)
    mac_reduction: float = 0.0  # 1 - after.macs / before.macs
    blocks: dict[str, list[int]] = field(default_factory=dict)  # block -> [before, after]
    scored_on: str = "test"  # the subset the three accuracies are on
    kind: str = "structured"
    schema_version: int = STRUCTURED_SCHEMA_VERSION


def structured_prune_run(run_dir: Path, out_dir: Path, config: StructuredConfig,
                         on_epoch: EpochHook | None = None, score_on: str = "test") -> StructuredReport:
    """Prunes the run's model channel-wise, fine-tunes it and writes a new run directory.

    ``score_on`` is the subset the report's accuracies are measured on: ``"val"`` leaves
    the test split unread (``edgecls tune`` ranks trials on val only)."""
    config.check()
    job = open_pruning_job(run_dir, out_dir, score_on)
    original, split, size = job.model, job.split, job.size
    calibration, _ = load_arrays(sample_items(split.items("train"), CALIBRATION_IMAGES, "even"), size)
    groups, keep, ratio = plan_with_ratio(original, config.ratio, config.criterion,
                                           config.per_block, calibration, config.mac_reduction)
    pruned = prune_channels(original, groups, keep)
    errors = repair(original, pruned, groups, keep, calibration, config.reconstruct)
    accuracy_pruned = top1_accuracy(pruned, job.test_images, job.test_labels)
    keeper = None
    if config.epochs:
        validation = load_arrays(split.items("val"), size)
        keeper = finetune(pruned, original if config.distill else None, split, size, config,
                          on_epoch, validation)
    before, after = model_cost(original), model_cost(pruned)
    report = StructuredReport(
        source_run=str(job.source.root), ratio=ratio, criterion=config.criterion,
        per_block=config.per_block, distill=config.distill, epochs=config.epochs,
        reconstruct=config.reconstruct, reconstruction_error=errors,
        before=before, after=after, mac_reduction=1.0 - after.macs / max(1, before.macs),
        accuracy_before=top1_accuracy(original, job.test_images, job.test_labels),
        accuracy_pruned=accuracy_pruned,
        accuracy_after=top1_accuracy(pruned, job.test_images, job.test_labels),
        val_accuracy=keeper.history if keeper else [],
        best_epoch=keeper.best_epoch if keeper else config.epochs,
        blocks={g.key: [g.channels, len(keep[g.key])] for g in groups}, scored_on=job.scored_on)
    write_pruned_run(job.source, job.target, pruned, report)
    return report
