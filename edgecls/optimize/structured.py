"""Structured channel pruning: narrower inverted-residual / MBConv blocks, not sparser ones.

Magnitude pruning (``edgecls.optimize.prune``) zeroes weights but a CPU runtime still
does the same work. Here whole expansion channels are removed from every block the
channel graph finds (``edgecls.optimize.channel_graph``): the expand conv and its
BatchNorm, the depthwise conv and its BatchNorm, the squeeze-and-excitation convs and
the project conv's inputs shrink together, so the block is cheaper in every runtime.

Channel importance (``criterion``):

- ``energy`` (default): what the channel adds to its project conv's output on training
  images, ``E[a_c^2] * ||W_c||^2`` (``edgecls.optimize.reconstruct``);
- ``l1``: L1 norm of the channel's expand 1x1 filter;
- ``l2``: L2 norm of the same filter;
- ``bn``: ``|gamma|`` of the BatchNorm right after the expand conv (network slimming,
  Liu et al. 2017); it suits models trained with a sparsity penalty on gamma.

The weight criteria ignore what the depthwise conv, its BatchNorm and the project conv
do to a channel; on EfficientNet-Lite0 / flowers128 at 30% fewer MACs they left 26-34%
accuracy before fine-tuning against 59-63% for ``energy`` (both with BatchNorm
recalibration).

After the cut, each block's project conv (and SE reduce conv) is refit by least squares
to reproduce the original block's output (``reconstruct``, on by default; 77.9% vs 78.1%
unpruned on the example above, before any fine-tune); without it the BatchNorm
statistics are re-estimated instead.

Selection: with ``per_block`` every block keeps the top ``1 - ratio`` share of its own
channels; otherwise scores are divided by their block's mean and one global threshold
keeps the top ``1 - ratio`` share of all expansion channels, so blocks with many weak
channels lose more. Kept counts are rounded to a multiple of 8 (what SIMD kernels like),
never below 8 and never above the original width.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgecls.errors import ConfigError, EdgeclsError
from edgecls.optimize.channel_graph import (
    ChannelGroup,
    copy_sliced_weights,
    find_groups,
    narrowed_config,
    sub_model,
)

STRUCTURED_SCHEMA_VERSION = 1
CRITERIA = ("energy", "l1", "l2", "bn")
CHANNEL_MULTIPLE = 8
CALIBRATION_IMAGES = 512  # training images for energy scores, reconstruction, BN statistics


@dataclass
class StructuredConfig:
    """Options of one ``edgecls prune --structured`` call.

    Attributes:
        ratio: share of expansion channels to remove (0 <= ratio < 1).
        mac_reduction: if set, the ratio is chosen for this share fewer MACs instead.
        criterion: channel importance, ``energy``, ``l1``, ``l2`` or ``bn`` (module doc).
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


@dataclass
class ModelCost:
    """Size and compute of one model (MACs counted from layer shapes, batch 1)."""

    parameters: int
    macs: int
    weights_bytes: int  # float32


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
    accuracy_before: float
    accuracy_pruned: float  # right after pruning, before the fine-tune
    accuracy_after: float
    reconstruct: bool = True
    reconstruction_error: dict[str, float] = field(default_factory=dict)  # block -> rel. error
    val_accuracy: list[float] = field(default_factory=list)  # before and after each epoch
    best_epoch: int = 0  # the fine-tune epoch whose weights were kept (0: none helped)
    mac_reduction: float = 0.0  # 1 - after.macs / before.macs
    blocks: dict[str, list[int]] = field(default_factory=dict)  # block -> [before, after]
    kind: str = "structured"
    schema_version: int = STRUCTURED_SCHEMA_VERSION


def group_scores(model: Any, groups: list[ChannelGroup], criterion: str,
                 images: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Importance of each expansion channel of every group (higher = keep); ``energy``
    needs ``images`` (prepared training images)."""
    if criterion == "energy":
        if images is None or not len(images):
            raise EdgeclsError("the energy criterion needs training images",
                               "use --criterion l1, l2 or bn")
        from edgecls.optimize.reconstruct import output_energy

        return output_energy(model, groups, images)
    return {g.key: channel_scores(model, g, criterion) for g in groups}


def channel_scores(model: Any, group: ChannelGroup, criterion: str) -> np.ndarray:
    """Weight-only importance (``l1``, ``l2`` or ``bn``) of one group's channels."""
    holder = sub_model(model, group.path)
    if criterion == "bn":
        if group.expand_bn is None:
            raise EdgeclsError(f"block {group.key} has no BatchNorm after its expand conv",
                               "use --criterion energy, l1 or l2")
        return np.abs(holder.get_layer(group.expand_bn).get_weights()[0])
    kernel = holder.get_layer(group.expand).get_weights()[0]  # (1, 1, in, out)
    flat = kernel.reshape(-1, kernel.shape[-1])
    return np.abs(flat).sum(axis=0) if criterion == "l1" else np.sqrt(np.square(flat).sum(axis=0))


def round_channels(count: float, width: int) -> int:
    """``count`` rounded to a multiple of 8, at least 8, at most ``width``."""
    rounded = int(round(count / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE
    return int(min(width, max(CHANNEL_MULTIPLE, rounded)))


def select_channels(scores: dict[str, np.ndarray], ratio: float,
                    per_block: bool) -> dict[str, np.ndarray]:
    """Sorted indices of the channels each block keeps."""
    if per_block:
        counts = {k: (1.0 - ratio) * len(s) for k, s in scores.items()}
    else:
        normalized = {k: s / max(float(np.mean(s)), 1e-12) for k, s in scores.items()}
        pooled = np.sort(np.concatenate(list(normalized.values())))[::-1]
        keep_total = int(round((1.0 - ratio) * len(pooled)))
        threshold = pooled[keep_total - 1] if keep_total > 0 else np.inf
        counts = {k: float(np.sum(s >= threshold)) for k, s in normalized.items()}
    keep = {}
    for key, block_scores in scores.items():
        width = len(block_scores)
        count = width if ratio == 0 else round_channels(counts[key], width)
        keep[key] = np.sort(np.argsort(-block_scores, kind="stable")[:count])
    return keep


def prunable_groups(model: Any) -> list[ChannelGroup]:
    """Every block of ``model`` whose expansion channels can be removed (or a user error)."""
    groups = find_groups(model.get_config())
    if not groups:
        raise EdgeclsError("found no inverted-residual / MBConv block to prune",
                           "structured pruning supports MobileNetV2/V3, EfficientNet-B0 "
                           "and EfficientNet-Lite models")
    return groups


def plan(model: Any, ratio: float | None, criterion: str = "energy", per_block: bool = False,
         images: np.ndarray | None = None, mac_reduction: float | None = None,
         ) -> tuple[list[ChannelGroup], dict[str, np.ndarray]]:
    """The prunable blocks of ``model`` and the channels each keeps: ``ratio`` of the
    channels go, or as many as give ``mac_reduction`` fewer MACs when that is set."""
    groups, keep, _ = _plan_with_ratio(model, ratio, criterion, per_block, images, mac_reduction)
    return groups, keep


def _plan_with_ratio(model: Any, ratio: float | None, criterion: str, per_block: bool,
                     images: np.ndarray | None, mac_reduction: float | None,
                     ) -> tuple[list[ChannelGroup], dict[str, np.ndarray], float]:
    """``plan`` and the ratio it used (chosen here when ``mac_reduction`` is set)."""
    groups = prunable_groups(model)
    scores = group_scores(model, groups, criterion, images)
    if mac_reduction is not None:
        ratio = _ratio_for(model, groups, scores, mac_reduction, per_block)
    return groups, select_channels(scores, ratio, per_block), ratio


def prune_channels(model: Any, groups: list[ChannelGroup], keep: dict[str, np.ndarray]) -> Any:
    """A new model with every group narrowed to its kept channels, weights copied."""
    import keras

    pruned = keras.Model.from_config(narrowed_config(model.get_config(), groups, keep))
    copy_sliced_weights(model, pruned, groups, keep)
    return pruned


def count_macs(model: Any) -> int:
    """Multiply-accumulates of one image through every Conv2D, DepthwiseConv2D and Dense."""
    import keras

    total = 0
    for layer in _leaf_layers(model):
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                  keras.layers.Dense)):
            continue
        kernel = layer.get_weights()[0]
        out_shape = tuple(layer.output.shape)
        if isinstance(layer, keras.layers.Dense):
            total += int(np.prod(out_shape[1:-1] or (1,))) * kernel.size
        else:  # conv kernel (kh, kw, in/groups, out); depthwise (kh, kw, in, multiplier)
            total += int(np.prod(out_shape[1:3])) * kernel.size
    return total


def model_cost(model: Any) -> ModelCost:
    """Parameters, MACs and float32 weight bytes of ``model``."""
    parameters = int(model.count_params())
    return ModelCost(parameters=parameters, macs=count_macs(model), weights_bytes=4 * parameters)


def ratio_for_mac_reduction(model: Any, target: float, criterion: str = "energy",
                            per_block: bool = False, images: np.ndarray | None = None) -> float:
    """The channel ratio whose pruned model has about ``target`` fewer MACs."""
    groups = prunable_groups(model)
    return _ratio_for(model, groups, group_scores(model, groups, criterion, images), target,
                      per_block)


def _ratio_for(model: Any, groups: list[ChannelGroup], scores: dict[str, np.ndarray],
               target: float, per_block: bool, steps: int = 14) -> float:
    """Bisection on the MACs of each group's convs, which scale linearly with its width."""
    group_macs = _group_macs(model, groups)
    total = count_macs(model)
    low, high = 0.0, 0.95
    for _ in range(steps):
        middle = (low + high) / 2
        keep = select_channels(scores, middle, per_block)
        saved = sum(m * (1 - len(keep[g.key]) / g.channels) for g, m in zip(groups, group_macs))
        low, high = (middle, high) if saved / total < target else (low, middle)
    return round((low + high) / 2, 4)


def _group_macs(model: Any, groups: list[ChannelGroup]) -> list[int]:
    """MACs of the convs whose cost scales with each group's width."""
    macs = []
    for group in groups:
        layers = {layer.name: layer for layer in sub_model(model, group.path).layers}
        names = (*group.sources, *group.sinks, *group.members)  # members may be bare ops
        macs.append(sum(count_macs_layer(layers[n]) for n in names if n in layers))
    return macs


def count_macs_layer(layer: Any) -> int:
    """MACs of one layer (0 for layers without a conv/dense kernel)."""
    import keras

    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        return 0
    return int(np.prod(tuple(layer.output.shape)[1:3])) * layer.get_weights()[0].size


def _leaf_layers(model: Any) -> list[Any]:
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if not hasattr(layer, "layers")]


def structured_prune_run(run_dir: Path, out_dir: Path, config: StructuredConfig,
                         on_epoch: Callable[[int, dict], None] | None = None) -> StructuredReport:
    """Prunes the run's model channel-wise, fine-tunes it and writes a new run directory."""
    from edgecls.data.pipeline import load_arrays
    from edgecls.optimize.finetune import open_pruning_job, top1_accuracy, write_pruned_run

    config.check()
    job = open_pruning_job(run_dir, out_dir)
    original, split, size = job.model, job.split, job.size
    calibration, _ = load_arrays(_sample(split.items("train"), CALIBRATION_IMAGES), size)
    groups, keep, ratio = _plan_with_ratio(original, config.ratio, config.criterion,
                                           config.per_block, calibration, config.mac_reduction)
    pruned = prune_channels(original, groups, keep)
    errors = _repair(original, pruned, groups, keep, calibration, config.reconstruct)
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
        blocks={g.key: [g.channels, len(keep[g.key])] for g in groups})
    write_pruned_run(job.source, job.target, pruned, report)
    return report


def _repair(original: Any, pruned: Any, groups: list[ChannelGroup], keep: dict[str, np.ndarray],
            images: np.ndarray, reconstruct: bool) -> dict[str, float]:
    """Least-squares refit of the blocks' readers, or else new BatchNorm statistics."""
    if reconstruct:
        from edgecls.optimize.reconstruct import reconstruct_sinks

        return reconstruct_sinks(original, pruned, groups, keep, images)
    recalibrate_batchnorm(pruned, images)
    return {}


def recalibrate_batchnorm(model: Any, images: np.ndarray, batch_size: int = 64) -> None:
    """Re-estimates every BatchNorm's moving mean/variance on ``images``.

    Removing channels shifts the statistics of the layers after each block (the removed
    ReLU outputs were not zero-mean), so the stored statistics no longer fit; the new
    ones are the average of the batch statistics over ``images`` (AdaBN-style).
    """
    import keras

    layers = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
              if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.trainable, layer.momentum) for layer in layers]
    for index, start in enumerate(range(0, len(images), batch_size)):
        for layer in layers:  # momentum i/(i+1): the running average of batch statistics
            layer.trainable, layer.momentum = True, index / (index + 1)
        model(images[start:start + batch_size].astype(np.float32), training=True)
    for layer, (trainable, momentum) in zip(layers, saved):
        layer.trainable, layer.momentum = trainable, momentum


def _sample(items: list, count: int) -> list:
    """An evenly spaced, deterministic subset of at most ``count`` items."""
    if len(items) <= count:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count)]


def finetune(student: Any, teacher: Any | None, split: Any, size: tuple[int, int],
             config: StructuredConfig, on_epoch: Callable[[int, dict], None] | None,
             validation: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """Fine-tunes ``student`` on the train split with a cosine-decayed learning rate;
    with a ``teacher``, by distillation (``alpha * CE(labels) + (1 - alpha) * T^2 *
    KL(teacher_T || student_T)``). With ``validation`` images, the weights scoring best
    on them (the starting ones included) are kept and the ``KeepBest`` callback that
    chose them is returned (None without validation images)."""
    import keras

    from edgecls.data.augment import AugmentConfig
    from edgecls.data.pipeline import make_dataset
    from edgecls.optimize.finetune import epoch_hook, prepare_for_finetune

    items = split.items("train")
    train = make_dataset(items, size, config.batch_size, training=True,
                         augment=AugmentConfig(enabled=config.augment))
    steps = config.epochs * -(-len(items) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(1, steps))
    prepare_for_finetune(student, schedule)
    trainer = student if teacher is None else _distiller(student, teacher, config, schedule)
    keeper = None
    if validation is not None and len(validation[1]):
        from edgecls.optimize.callbacks import KeepBest

        keeper = KeepBest(student, *validation)
    callbacks = [c for c in (keeper, epoch_hook(on_epoch)) if c is not None]  # keeper first:
    trainer.fit(train, epochs=config.epochs, verbose=0, shuffle=False,  # it adds val_top1
                callbacks=callbacks)  # to the logs the hook reports; the dataset shuffles
    return keeper


def _distiller(student: Any, teacher: Any, config: StructuredConfig, learning_rate: Any) -> Any:
    """A model from images to [student probs | teacher probs] compiled with the KD loss."""
    import keras
    from keras import ops

    teacher.trainable = False
    teacher.name = "teacher"  # layer names must be unique in the distiller
    image = keras.Input(shape=student.input_shape[1:])
    both = keras.layers.Concatenate(name="student_teacher")(
        [student(image), teacher(image, training=False)])
    classes = int(student.output_shape[-1])
    t, alpha = float(config.temperature), float(config.alpha)

    def kd_loss(labels: Any, outputs: Any) -> Any:
        student_probs, teacher_probs = outputs[:, :classes], outputs[:, classes:]
        ce = keras.losses.sparse_categorical_crossentropy(labels, student_probs)
        log_s = ops.log_softmax(ops.log(ops.maximum(student_probs, 1e-8)) / t, axis=-1)
        log_t = ops.log_softmax(ops.log(ops.maximum(teacher_probs, 1e-8)) / t, axis=-1)
        kl = ops.sum(ops.exp(log_t) * (log_t - log_s), axis=-1)
        return alpha * ce + (1.0 - alpha) * t * t * kl

    def accuracy(labels: Any, outputs: Any) -> Any:
        return keras.metrics.sparse_categorical_accuracy(labels, outputs[:, :classes])

    trainer = keras.Model(image, both, name="distiller")
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=kd_loss,
                    metrics=[accuracy])
    return trainer


def run_with_progress(run_dir: Path, out_dir: Path, config: StructuredConfig,
                      console: Any) -> StructuredReport:
    """``structured_prune_run`` with a rich status line and the before/after table."""
    config.check()
    with console.status("scoring, pruning and refitting channels, then fine-tuning") as status:
        report = structured_prune_run(run_dir, out_dir, config, on_epoch=lambda e, logs: status.update(
            f"epoch {e}/{config.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
            f"validation top-1 {logs.get('val_top1', float('nan')):.4f}"))
    render_report(report, console)
    console.print(f"pruned run: {out_dir} (export it with `edgecls export {out_dir}`)")
    return report


def render_report(report: StructuredReport, console: Any) -> None:
    """Before/after table: parameters, MACs, float32 size and test accuracy."""
    from rich.table import Table

    changed = sum(1 for before, after in report.blocks.values() if after < before)
    table = Table(title=f"structured pruning ({report.criterion}, ratio {report.ratio:g}, "
                        f"{changed}/{len(report.blocks)} blocks narrowed)")
    for column in ("", "before", "after", "change"):
        table.add_column(column, justify="right")
    rows = (("parameters", report.before.parameters, report.after.parameters),
            ("MACs (M)", report.before.macs / 1e6, report.after.macs / 1e6),
            ("float32 weights KB", report.before.weights_bytes / 1024,
             report.after.weights_bytes / 1024))
    for label, before, after in rows:
        table.add_row(label, f"{before:,.1f}", f"{after:,.1f}", f"{after / before - 1:+.1%}")
    table.add_row("test accuracy %", f"{100 * report.accuracy_before:.2f}",
                  f"{100 * report.accuracy_after:.2f}",
                  f"{100 * (report.accuracy_after - report.accuracy_before):+.2f} pp "
                  f"(no fine-tune: {100 * report.accuracy_pruned:.2f})")
    console.print(table)
    if report.epochs:
        kept = f"epoch {report.best_epoch}" if report.best_epoch else "the weights before it"
        console.print(f"fine-tune: kept {kept}, the best on the validation split "
                      f"({', '.join(f'{100 * a:.1f}' for a in report.val_accuracy)} %)")
