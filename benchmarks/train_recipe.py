"""Compare training recipes side by side on this CPU: flowers128, EfficientNet-Lite0 with
ImageNet weights, scored on the run's own val/test split.

Two parts, each printing one table (accuracy, balanced accuracy = mean per-class
recall, the smallest class recall and its gap to the mean recall):

``heads``: the backbone's pooled features of every image are computed once (cached in
``--work``); a softmax head (dropout 0.2, label smoothing 0.1, AdamW, cosine decay,
edgecls' own loss) is trained on them per variant, 3 seeds each: head learning rate and
epochs, and the imbalance methods (none, class weights, class-balanced sampling, logit
adjustment) on a copy of the split whose ``--rare`` class keeps only ``--rare-count``
training images (val/test untouched, so its recall is measured on all its images).

``runs``: full ``edgecls.train.fit.train`` runs of named variants (``today``: the
defaults before this recipe; ``recipe``: head at 3e-3, logit adjustment, the whole
backbone fine-tuned at 1e-4; ``defaults``: TrainConfig's defaults at 128 px;
``layer_decay``: those with the whole backbone fine-tuned under layer-wise learning-rate
decay 0.7; ``ema``, ``randaugment``, ``mixup_cutmix``, ``strong``: the defaults plus a
weight average at momentum 0.99, RandAugment at magnitude 0.5, mixup 0.2 / cutmix 1.0 on
alternate batches, and all three; ``size224``: the defaults at 224 px, the flowers upsampled
from 128), all at ``--epochs``; a variant whose run directory in
``--work`` is finished is reused, an unfinished one resumed. Every variant after the
first is also compared with the first on the same held-out images (val + test), paired,
with the export gate's 95 % interval: a difference inside it is noise.

    python benchmarks/train_recipe.py heads [--img-size 128]
    python benchmarks/train_recipe.py runs --variants today,recipe [--imbalanced]
    python benchmarks/train_recipe.py runs --variants defaults,layer_decay
    python benchmarks/train_recipe.py runs --variants defaults,ema,randaugment,mixup_cutmix,strong
    python benchmarks/train_recipe.py runs --variants defaults,size224
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.rundir import RunDir

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"
MODEL = "efficientnet_lite0"

# TrainConfig values of each full-run variant (the rest: TrainConfig's defaults).
TODAY = {"img_size": 128, "head_epochs": None, "lr": 1e-3, "fine_tune_lr": 1e-4,
         "fine_tune_fraction": 0.3, "imbalance": "class_weights", "ema": 0.0,
         "augment": {"randaugment": 0.0, "mixup": 0.0, "cutmix": 0.0}}
RECIPE = {"lr": 3e-3, "fine_tune_lr": 1e-4, "fine_tune_fraction": 1.0,
          "imbalance": "logit_adjustment"}
# The defaults of today (fine-tune the upper 0.3 of the backbone at one rate) against the
# whole backbone fine-tuned with layer-wise learning-rate decay 0.7 (issue 16).
DEFAULTS = {"img_size": 128}
LAYER_DECAY = {"img_size": 128, "fine_tune_fraction": 1.0, "layer_lr_decay": 0.7}
# The off-by-default parts of the recipe (issue 16), each on top of today's defaults.
EMA = {"img_size": 128, "ema": 0.99}
RANDAUGMENT = {"img_size": 128, "augment": {"randaugment": 0.5}}
MIXUP_CUTMIX = {"img_size": 128, "augment": {"mixup": 0.2, "cutmix": 1.0}}
STRONG = {"img_size": 128, "ema": 0.99, "augment": {"randaugment": 0.5, "mixup": 0.2, "cutmix": 1.0}}
# The resolution rule (median shorter side: 128 px on flowers128) against the pretrained
# weights' own 224 px, images upsampled.
SIZE_224 = {"img_size": 224}
VARIANTS: dict[str, dict[str, Any]] = {"today": TODAY, "recipe": RECIPE, "defaults": DEFAULTS,
                                       "layer_decay": LAYER_DECAY, "ema": EMA,
                                       "randaugment": RANDAUGMENT, "mixup_cutmix": MIXUP_CUTMIX,
                                       "strong": STRONG, "size224": SIZE_224}


def main() -> None:
    args = _parse_args()
    if not args.data.is_dir():
        sys.exit(f"dataset {args.data} is absent (see ../shared/DATA.md)")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.part == "heads":
        _heads(args)
    else:
        _runs(args)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("heads", "runs"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgecls_train_recipe"),
                        help="features, imbalanced copy and run directories (reused)")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--rare", default="sunflower", help="class cut down for imbalance")
    parser.add_argument("--rare-count", type=int, default=60,
                        help="training images the rare class keeps")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the full runs")
    parser.add_argument("--variants", default="today,recipe")
    parser.add_argument("--imbalanced", action="store_true",
                        help="full runs on the imbalanced copy instead of the plain data")
    return parser.parse_args()


# ---------------------------------------------------------------- data
def _split(args: argparse.Namespace):
    from edgecls.data.split import prepare_split

    return prepare_split(args.data, args.work / "split")


def _imbalanced_copy(args: argparse.Namespace) -> Path:
    """``work/imbalanced/{train,val,test}/<class>/`` symlinks; the rare class keeps
    ``rare_count`` of its training images."""
    split = _split(args)
    root = args.work / f"imbalanced_{args.rare}_{args.rare_count}"
    if root.is_dir():
        return root
    partial = root.with_name(root.name + ".partial")
    rare = split.labels.index(args.rare)
    for subset in ("train", "val", "test"):
        items = split.items(subset)
        if subset == "train":
            kept = [item for item in items if item[1] == rare][: args.rare_count]
            items = [item for item in items if item[1] != rare] + kept
        for index, (path, label) in enumerate(items):
            folder = partial / subset / split.labels[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index:05d}{path.suffix}").symlink_to(path)
    partial.rename(root)
    return root


# ---------------------------------------------------------------- heads
def _features(args: argparse.Namespace) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Pooled backbone features and labels of train/val/test, computed once."""
    split = _split(args)
    cache = args.work / f"features_{args.img_size}.npz"
    if not cache.is_file():
        from edgecls.data.pipeline import load_arrays
        from edgecls.models import build

        model = build(MODEL, weights="imagenet", include_top=False, num_classes=len(split.labels),
                      input_size=args.img_size)
        backbone = model.get_layer("backbone")
        arrays = {}
        started = time.perf_counter()
        for subset in ("train", "val", "test"):
            images, labels = load_arrays(split.items(subset), (args.img_size, args.img_size))
            maps = backbone.predict(images.astype("float32"), batch_size=64, verbose=0)
            arrays[f"{subset}_x"] = maps.mean(axis=(1, 2)) if maps.ndim == 4 else maps
            arrays[f"{subset}_y"] = labels
        np.savez(cache, **arrays)
        print(f"features at {args.img_size} px: {time.perf_counter() - started:.0f} s")
    data = np.load(cache)
    return {s: (data[f"{s}_x"], data[f"{s}_y"]) for s in ("train", "val", "test")}, split.labels


def _heads(args: argparse.Namespace) -> None:
    features, labels = _features(args)
    rare = labels.index(args.rare)
    x, y = features["train"]
    keep = np.concatenate([np.flatnonzero(y != rare), np.flatnonzero(y == rare)[: args.rare_count]])
    imbalanced = {**features, "train": (x[keep], y[keep])}
    rows, settings = [], []
    for lr in (1e-3, 3e-3, 1e-2, 3e-2):
        for epochs in (2, 5, 10):
            rows.append(_head_row(f"lr {lr:g}, {epochs} ep", features, labels, lr, epochs,
                                  "class_weights"))
            settings.append((lr, epochs))
    _print_table(f"head on frozen features, flowers128 at {args.img_size} px "
                 f"({len(x)} train images), class weights, mean of 3 seeds", rows)
    lr, epochs = settings[int(np.argmax([row["val"] for row in rows]))]  # chosen on val
    rows = [_head_row(f"{method}", imbalanced, labels, lr, epochs, method)
            for method in ("none", "class_weights", "sampling", "logit_adjustment")]
    _print_table(f"imbalance: {args.rare} cut to {args.rare_count} of {int(np.sum(y == rare))} "
                 f"training images, head lr {lr:g}, {epochs} epochs (best val above)", rows)


def _head_row(name: str, features: dict, labels: list[str], lr: float, epochs: int,
              imbalance: str, seeds: int = 3) -> dict[str, Any]:
    scores = [_train_head(features, len(labels), lr, epochs, imbalance, seed) for seed in range(seeds)]
    val = float(np.mean([s[0] for s in scores]))
    tests = [_scores(features["test"][1], s[1], labels) for s in scores]
    means = {k: float(np.mean([t[k] for t in tests])) for k in tests[0] if k != "smallest_class"}
    return {"variant": name, "val": val, **means, "smallest_class": tests[0]["smallest_class"]}


def _train_head(features: dict, classes: int, lr: float, epochs: int, imbalance: str,
                seed: int) -> tuple[float, np.ndarray]:
    """(val accuracy, test probabilities) of a head trained on the features."""
    import keras
    import tensorflow as tf

    from edgecls.train.losses import class_prior, make_loss

    keras.utils.set_random_seed(seed)
    x, y = features["train"]
    head = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.Dropout(0.2),
                             keras.layers.Dense(classes, activation="softmax")])
    steps = int(np.ceil(len(x) / 32))
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps * epochs, alpha=0.01)
    prior = class_prior(y, classes) if imbalance == "logit_adjustment" else None
    head.compile(keras.optimizers.AdamW(schedule, weight_decay=1e-4), make_loss(0.1, prior),
                 metrics=["accuracy"])
    onehot = np.eye(classes, dtype="float32")
    if imbalance == "sampling":
        streams = [tf.data.Dataset.from_tensor_slices((x[y == c], onehot[y[y == c]]))
                   .shuffle(10_000, seed=seed).repeat() for c in range(classes)]
        ds = tf.data.Dataset.sample_from_datasets(streams, [1 / classes] * classes, seed=seed,
                                                  rerandomize_each_iteration=True).take(len(x))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, onehot[y])).shuffle(10_000, seed=seed)
    weights = None
    if imbalance == "class_weights":
        counts = np.bincount(y, minlength=classes)
        weights = {c: len(y) / (classes * counts[c]) for c in range(classes)}
    head.fit(ds.batch(32), epochs=epochs, class_weight=weights, verbose=0)
    val_x, val_y = features["val"]
    val = float(np.mean(np.argmax(head.predict(val_x, verbose=0), axis=1) == val_y))
    return val, head.predict(features["test"][0], verbose=0)


# ---------------------------------------------------------------- full runs
def _runs(args: argparse.Namespace) -> None:
    data = _imbalanced_copy(args) if args.imbalanced else args.data
    rows, runs = [], []
    for name in args.variants.split(","):
        run, seconds = _run_variant(args, name, data)
        runs.append((name, run))
        metrics = json.loads(RunDir(run).metrics.read_text())
        state = json.loads(RunDir(run).state.read_text())
        scores = _scores_from_metrics(metrics)
        rows.append({"variant": name, "val": state["best_val_accuracy"], **scores,
                     "epochs": state["epoch"], "minutes": seconds / 60})
    _print_table(f"full runs, {MODEL} imagenet, {args.epochs} epochs, "
                 f"{'imbalanced copy' if args.imbalanced else 'flowers128'}", rows)
    if len(runs) > 1:
        _print_paired(runs)


def _held_out_correct(run: Path) -> np.ndarray:
    """Per-image top-1 correctness of a run's best model on its val + test images."""
    from edgecls.data.pipeline import load_arrays
    from edgecls.data.split import Split
    from edgecls.models.float_model import input_size, load_float_model, predict

    split = Split.load(RunDir(run).split)
    items = split.items("val") + split.items("test")
    model = load_float_model(RunDir(run).best_model)
    images, labels = load_arrays(items, input_size(model))
    return predict(model, images).argmax(axis=1) == labels


def _print_paired(runs: list[tuple[str, Path]]) -> None:
    """Each variant against the first on the same held-out images, paired."""
    from edgecls.stats import compare_paired

    reference_name, reference_run = runs[0]
    reference = _held_out_correct(reference_run)
    print(f"\npaired against {reference_name} on {len(reference)} held-out images (val + test): "
          f"gain in pp [95 % interval], images turned right / wrong")
    for name, run in runs[1:]:
        paired = compare_paired(reference, _held_out_correct(run))
        print(f"{name:<24}{-paired.drop_pp:+8.2f} [{-paired.high_pp:+.2f}, {-paired.low_pp:+.2f}]"
              f"  {paired.counts.wrong_to_right} / {paired.counts.right_to_wrong}")


def _run_variant(args: argparse.Namespace, name: str, data: Path) -> tuple[Path, float]:
    from edgecls.train.config import TrainConfig
    from edgecls.train.fit import train

    out = args.work / f"run_{name}_{'imb' if args.imbalanced else 'all'}_{args.epochs}"
    timing = out.with_suffix(".seconds")
    if RunDir(out).metrics.is_file() and timing.is_file():
        return out, float(timing.read_text())
    overrides = VARIANTS[name]
    config = TrainConfig(data=str(data), out=str(out), model=MODEL, weights="imagenet",
                         epochs=args.epochs, patience=None, **overrides)
    started = time.perf_counter()
    train(config, resume=RunDir(out).config.is_file())
    seconds = time.perf_counter() - started
    timing.write_text(f"{seconds:.1f}")
    return out, seconds


# ---------------------------------------------------------------- scores
def _scores(y_true: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> dict[str, Any]:
    from edgecls.metrics import classification_metrics

    return _scores_from_metrics(classification_metrics(y_true, probabilities, labels))


def _scores_from_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    recalls = {label: row["recall"] for label, row in metrics["per_class"].items()}
    smallest = min(metrics["per_class"], key=lambda label: metrics["per_class"][label]["support"])
    mean = float(np.mean(list(recalls.values())))
    return {"test": metrics["accuracy"], "balanced": mean, "min_recall": min(recalls.values()),
            "smallest_class": smallest, "smallest_recall": recalls[smallest],
            "gap": mean - min(recalls.values())}


def _print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    columns = ["val", "test", "balanced", "min_recall", "gap", "smallest_recall"]
    extra = [c for c in ("epochs", "minutes") if c in rows[0]]
    print(f"{'variant':<24}" + "".join(f"{c:>16}" for c in columns + extra))
    for row in rows:
        print(f"{row['variant']:<24}" + "".join(f"{row[c]:>16.4f}" for c in columns)
              + "".join(f"{row[c]:>16.1f}" for c in extra))
    print(json.dumps({"title": title, "rows": rows}))


if __name__ == "__main__":
    main()
