"""Magnitude pruning in native Keras 3 (tensorflow-model-optimization rejects Keras 3).

During a short fine-tune, a callback raises the sparsity of every large conv/dense
kernel along a polynomial schedule (``s(t) = s_f * (1 - (1 - t)^3)``, as in Zhu & Gupta
2017 and tfmot's ``PolynomialDecay``): every ``frequency`` steps the smallest-magnitude
weights of each kernel are masked, and after every step the masks are re-applied so the
optimizer cannot revive them. The masks live in the callback, not in the model: at the
end the weights simply hold zeros, the model has no wrapper layers, and the output run
directory is a normal run that ``edgecls export`` accepts.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.data.augment import AugmentConfig
from edgecls.data.pipeline import make_dataset
from edgecls.errors import ConfigError, EdgeclsError
from edgecls.models.float_model import build_for_fit
from edgecls.optimize.finetune import (EpochHook, epoch_hook, open_pruning_job, prepare_for_finetune, top1_accuracy,
                                       write_pruned_run)

PRUNE_SCHEMA_VERSION = 1
_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")


@dataclass
class PruneConfig:
    """Options of one ``edgecls prune`` call.

    Attributes:
        sparsity: final share of zero weights in each pruned kernel (0 < s < 1).
        epochs: fine-tune epochs; the schedule reaches ``sparsity`` at ``end_fraction``.
        batch_size: fine-tune batch size.
        learning_rate: Adam learning rate of the fine-tune.
        end_fraction: share of the fine-tune after which sparsity stays at its target.
        frequency: steps between mask updates.
        min_weights: kernels with fewer weights are left dense (first conv, tiny layers).
        augment: augment the fine-tune images like training does.
    """

    sparsity: float = 0.5
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    end_fraction: float = 0.7
    frequency: int = 10
    min_weights: int = 1024
    augment: bool = True

    def check(self) -> None:
        """Raises a user error for values that cannot work."""
        if not 0.0 < self.sparsity < 1.0:
            raise ConfigError(f"--sparsity must be between 0 and 1, got {self.sparsity}",
                              "e.g. --sparsity 0.5 zeroes half of each kernel")
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be at least 1, got {self.epochs}")
        if not 0.0 < self.end_fraction <= 1.0 or self.frequency < 1 or self.batch_size < 1:
            raise ConfigError("end_fraction must be in (0, 1], frequency and batch_size >= 1")

    def run(self, run_dir: Path, out_dir: Path, on_epoch: EpochHook | None = None) -> PruneReport:
        """``prune_run`` with these options (the ``PruningMethod`` interface)."""
        return prune_run(run_dir, out_dir, self, on_epoch)


@dataclass
class PruneReport:
    """What pruning did, written as ``prune_report.json`` into the output run."""

    source_run: str
    sparsity_target: float
    epochs: int
    accuracy_before: float
    accuracy_after: float
    gzip_bytes_before: int  # gzip of the float32 weights
    gzip_bytes_after: int
    overall_sparsity: float
    layers: dict[str, float] = field(default_factory=dict)  # kernel path -> sparsity
    schema_version: int = PRUNE_SCHEMA_VERSION


def polynomial_sparsity(step: int, end_step: int, final: float, power: int = 3) -> float:
    """Sparsity at ``step``: 0 at step 0, ``final`` from ``end_step`` on."""
    progress = min(1.0, step / max(1, end_step))
    return final * (1.0 - (1.0 - progress) ** power)


def prunable_kernels(model: Any, min_weights: int) -> list[Any]:
    """Conv / depthwise / dense kernel variables with at least ``min_weights`` weights."""
    found = []
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in _KERNEL_NAMES and len(variable.shape) >= 2 and \
                int(np.prod(variable.shape)) >= min_weights:
            found.append(variable)
    return found


def magnitude_mask(weights: np.ndarray, sparsity: float) -> np.ndarray:
    """Boolean mask keeping the largest-magnitude ``1 - sparsity`` share of ``weights``."""
    count = int(round(sparsity * weights.size))
    if count <= 0:
        return np.ones(weights.shape, dtype=bool)
    flat = np.abs(weights).ravel()
    order = np.argpartition(flat, count - 1)[:count]
    mask = np.ones(flat.size, dtype=bool)
    mask[order] = False
    return mask.reshape(weights.shape)


def make_pruning_callback(kernels: list[Any], final: float, end_step: int, frequency: int):
    """A Keras callback that applies the polynomial magnitude-pruning schedule."""
    import keras

    class MagnitudePruning(keras.callbacks.Callback):
        """Updates masks every ``frequency`` steps; re-applies them after every step."""

        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.masks = [np.ones(tuple(k.shape), dtype=bool) for k in kernels]

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.step += 1
            if self.step % frequency == 0 or self.step == end_step:
                self.update_masks(polynomial_sparsity(self.step, end_step, final))
            self.apply()

        def update_masks(self, sparsity: float) -> None:
            self.masks = [magnitude_mask(np.asarray(k.numpy()), sparsity) for k in kernels]

        def apply(self) -> None:
            for kernel, mask in zip(kernels, self.masks):
                kernel.assign(np.asarray(kernel.numpy()) * mask)

        def finish(self) -> None:
            """Masks at exactly the target sparsity (also when training ended early)."""
            self.update_masks(final)
            self.apply()

    return MagnitudePruning()


def kernel_sparsity(kernels: list[Any]) -> dict[str, float]:
    """Kernel path -> share of exactly-zero weights."""
    return {k.path: float(np.mean(np.asarray(k.numpy()) == 0.0)) for k in kernels}


def weights_gzip_size(model: Any) -> int:
    """gzip-compressed bytes of the model's weights as float32 (what pruning shrinks;
    optimizer state, which a saved run may also hold, is left out on both sides)."""
    raw = b"".join(np.asarray(w.numpy(), dtype=np.float32).tobytes() for w in model.weights)
    return len(gzip.compress(raw, compresslevel=6))


def prune_run(run_dir: Path, out_dir: Path, config: PruneConfig,
              on_epoch: EpochHook | None = None) -> PruneReport:
    """Fine-tunes the run's model with magnitude pruning into a new run directory."""
    config.check()
    job = open_pruning_job(run_dir, out_dir)
    source, target, split, model, size = job.source, job.target, job.split, job.model, job.size
    test_images, test_labels = job.test_images, job.test_labels
    before = top1_accuracy(model, test_images, test_labels)
    gzip_before = weights_gzip_size(model)
    kernels = prunable_kernels(model, config.min_weights)
    if not kernels:
        raise EdgeclsError(f"the model has no conv/dense kernel with >= {config.min_weights} weights",
                           "nothing to prune; lower --min-weights or prune a larger model")
    train = make_dataset(split.items("train"), size, config.batch_size, training=True,
                         augment=AugmentConfig(enabled=config.augment))
    steps = int(train.cardinality().numpy()) * config.epochs
    callback = make_pruning_callback(kernels, config.sparsity,
                                     max(1, int(config.end_fraction * steps)), config.frequency)
    prepare_for_finetune(model, config.learning_rate)
    build_for_fit(model, train)
    model.fit(train, epochs=config.epochs, verbose=0, shuffle=False,  # the dataset shuffles
              callbacks=[callback, epoch_hook(on_epoch)])
    callback.finish()
    layers = kernel_sparsity(kernels)
    report = PruneReport(
        source_run=str(source.root), sparsity_target=config.sparsity, epochs=config.epochs,
        accuracy_before=before, accuracy_after=top1_accuracy(model, test_images, test_labels),
        gzip_bytes_before=gzip_before, gzip_bytes_after=weights_gzip_size(model),
        overall_sparsity=_overall(kernels), layers=layers)
    write_pruned_run(source, target, model, report)
    return report


def _overall(kernels: list[Any]) -> float:
    zeros = sum(int(np.sum(np.asarray(k.numpy()) == 0.0)) for k in kernels)
    return zeros / max(1, sum(int(np.prod(k.shape)) for k in kernels))
