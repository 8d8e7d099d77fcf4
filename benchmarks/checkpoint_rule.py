"""Which epoch should a run keep? Score checkpoint rules offline on flowers128 subsets.

Each (subset size, seed) is trained once with ``edgecls.train.fit.train``'s defaults
(EfficientNet-Lite0 with ImageNet weights, the resolution rule: 128 px, 20 epochs: 6 on
the head over cached features, 14 fine-tuning), with early stopping off so that every
epoch is recorded. After every epoch the val and test probabilities of that epoch's
weights are kept (``work/preds_<size>_<seed>.npz``, reused on the next call). Then every
rule replays the run epoch by epoch, early stopping included (patience 5 within a
phase, as the defaults), and picks an epoch:

- ``acc_strict``: val accuracy, replaced only on a strict improvement (the rule before);
- ``acc_ties_later``: val accuracy, a tie replaces it too (the later epoch wins);
- ``acc_then_ce``: val accuracy, ties broken by the lower plain val cross-entropy;
- ``ce``: lowest plain val cross-entropy (no label smoothing, no logit adjustment);
- ``train_loss``: lowest val loss as Keras reports it (the training loss: smoothed and
  logit-adjusted);
- ``last``: the last epoch (no early stopping).

For each subset size it prints every rule's chosen epochs and test accuracies per seed
and the paired difference against ``acc_strict`` on the test images, with a 95 %
interval (``edgecls.stats``), per seed and pooled over the seeds.

    nice -n 10 python benchmarks/checkpoint_rule.py --sizes 20,50,150,all --seeds 0,1,2 \\
        > /tmp/checkpoint_rule.txt 2>&1 &
    python benchmarks/checkpoint_rule.py --score-only   # score what is collected so far
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"
MODEL = "efficientnet_lite0"
PATIENCE = 5
_LOG_FLOOR = 1e-12


def main() -> None:
    args = _parse_args()
    if not args.data.is_dir():
        sys.exit(f"dataset {args.data} is absent (see ../shared/DATA.md)")
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = args.sizes.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.score_only:
        for size in sizes:
            for seed in seeds if size != "all" else seeds[:1]:
                _collect(args, size, seed)
                print(f"collected {size}/{seed}", flush=True)
    every = []
    for size in sizes:
        runs = [run for run in (_load(args.work, size, seed) for seed in seeds) if run is not None]
        _report(size, runs)
        every += runs
    if len(sizes) > 1:
        _report("+".join(sizes), every)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgecls_checkpoint_rule"))
    parser.add_argument("--sizes", default="20,50,150,all",
                        help="images per class of each subset ('all': the full set, seed 0 only)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--score-only", action="store_true")
    return parser.parse_args()


# ---------------------------------------------------------------- data and training
def _subset(args: argparse.Namespace, size: str, seed: int) -> Path:
    """``size`` images per class drawn with ``seed``, as symlinks (the full set for 'all')."""
    if size == "all":
        return args.data
    root = args.work / f"data_{size}_{seed}"
    if root.is_dir():
        return root
    partial = root.with_name(root.name + ".partial")
    rng = np.random.default_rng(seed)
    for folder in sorted(p for p in args.data.iterdir() if p.is_dir()):
        files = sorted(folder.iterdir())
        (partial / folder.name).mkdir(parents=True, exist_ok=True)
        for index in sorted(rng.choice(len(files), int(size), replace=False)):
            (partial / folder.name / files[index].name).symlink_to(files[index])
    partial.rename(root)
    return root


def _collect(args: argparse.Namespace, size: str, seed: int) -> None:
    """Trains one run and keeps each epoch's val and test probabilities."""
    from edgecls.data.split import Split
    from edgecls.rundir import RunDir
    from edgecls.train.config import TrainConfig
    from edgecls.train.fit import train

    target = args.work / f"preds_{size}_{seed}.npz"
    if target.is_file():
        return
    out = args.work / f"run_{size}_{seed}"
    if out.exists():  # an interrupted collection: its epochs were not all kept
        import shutil

        shutil.rmtree(out)
    config = TrainConfig(data=str(_subset(args, size, seed)), out=str(out), model=MODEL,
                         weights="imagenet", epochs=args.epochs, patience=None, seed=seed)
    keeper = _EpochKeeper(RunDir(out))

    def on_split(split: Split) -> None:
        keeper.split = split

    started = time.perf_counter()
    train(config, callbacks=[keeper], on_split=on_split)
    split = keeper.split
    history = _history(RunDir(out))
    np.savez(target, val=np.stack(keeper.val), test=np.stack(keeper.test),
             val_labels=np.array([y for _, y in split.items("val")]),
             test_labels=np.array([y for _, y in split.items("test")]),
             phase=np.array([row["phase"] for row in history]),
             keras_val_loss=np.array([float(row["val_loss"]) for row in history]),
             keras_val_accuracy=np.array([float(row["val_accuracy"]) for row in history]),
             seconds=time.perf_counter() - started,
             counts=np.array([len(split.items(s)) for s in ("train", "val", "test")]))


def _history(run: Any) -> list[dict[str, str]]:
    from edgecls.train.checkpoint import read_history

    return read_history(run)


def _keras_callback_base() -> type:
    import keras

    return keras.callbacks.Callback


class _EpochKeeper(_keras_callback_base()):  # type: ignore[misc]
    """After each epoch: the val and test probabilities of the weights just trained.

    In the head phase ``self.model`` is the head on cached features: the (frozen)
    backbone's features of val and test are computed once from the run's last checkpoint.
    """

    def __init__(self, run: Any) -> None:
        super().__init__()
        self.run = run
        self.split: Any = None
        self.val: list[np.ndarray] = []
        self.test: list[np.ndarray] = []
        self._features: dict[str, np.ndarray] | None = None
        self._images: dict[str, np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        on_features = len(self.model.inputs[0].shape) == 2
        inputs = self._head_features() if on_features else self._image_arrays()
        for subset, kept in (("val", self.val), ("test", self.test)):
            kept.append(np.asarray(self.model.predict(inputs[subset], batch_size=64, verbose=0)))

    def _image_arrays(self) -> dict[str, np.ndarray]:
        from edgecls.data.pipeline import load_arrays

        if self._images is None:
            size = tuple(int(d) for d in self.model.inputs[0].shape[1:3])
            self._images = {s: load_arrays(self.split.items(s), size)[0].astype("float32")
                            for s in ("val", "test")}
        return self._images

    def _head_features(self) -> dict[str, np.ndarray]:
        import keras

        from edgecls.models.float_model import load_float_model
        from edgecls.models.head import HEAD_LAYERS

        if self._features is None:
            model = load_float_model(self.run.last_checkpoint)
            extractor = keras.Model(model.inputs, model.get_layer(HEAD_LAYERS[0]).output)
            from edgecls.data.pipeline import load_arrays

            size = tuple(int(d) for d in model.inputs[0].shape[1:3])
            self._features = {s: extractor.predict(load_arrays(self.split.items(s), size)[0]
                                                   .astype("float32"), batch_size=64, verbose=0)
                              for s in ("val", "test")}
        return self._features


def _load(work: Path, size: str, seed: int) -> dict[str, Any] | None:
    path = work / f"preds_{size}_{seed}.npz"
    if not path.is_file():
        return None
    data = dict(np.load(path))
    data["seed"] = seed
    return data


# ---------------------------------------------------------------- rules
def _cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Plain cross-entropy of each epoch: (epochs, images, classes) -> (epochs,)."""
    picked = np.take_along_axis(probabilities, labels[None, :, None], axis=2)[..., 0]
    return -np.log(np.clip(picked, _LOG_FLOOR, 1.0)).mean(axis=1)


Better = Callable[[dict[str, float], dict[str, float]], bool]  # (epoch, best) -> improves?

RULES: dict[str, Better] = {
    "acc_strict": lambda e, b: e["acc"] > b["acc"],
    "acc_ties_later": lambda e, b: e["acc"] >= b["acc"],
    "acc_then_ce": lambda e, b: e["acc"] > b["acc"] or (e["acc"] == b["acc"] and e["ce"] < b["ce"]),
    "ce": lambda e, b: e["ce"] < b["ce"],
    "train_loss": lambda e, b: e["keras_loss"] < b["keras_loss"],
    "last": lambda e, b: True,
}


def choose_epoch(epochs: list[dict[str, float]], phases: list[str], better: Better,
                 patience: int = PATIENCE) -> int:
    """The index of the epoch a rule keeps, replaying early stopping as training does
    (the wait restarts with each phase, the best carries over)."""
    best, chosen, wait, index = None, -1, 0, 0
    while index < len(epochs):
        phase = phases[index]
        wait = 0
        while index < len(epochs) and phases[index] == phase:
            if best is None or better(epochs[index], best):
                best, chosen, wait = epochs[index], index, 0
            else:
                wait += 1
            index += 1
            if wait >= patience:  # the rest of the phase never ran
                while index < len(epochs) and phases[index] == phase:
                    index += 1
    return chosen


def _epoch_scores(run: dict[str, Any]) -> list[dict[str, float]]:
    accuracy = (run["val"].argmax(axis=2) == run["val_labels"][None]).mean(axis=1)
    ce = _cross_entropy(run["val"], run["val_labels"])
    return [{"acc": float(a), "ce": float(c), "keras_loss": float(k)}
            for a, c, k in zip(accuracy, ce, run["keras_val_loss"])]


def _report(size: str, runs: list[dict[str, Any]]) -> None:
    from edgecls.stats import compare_paired

    if not runs:
        print(f"\n{size}: nothing collected")
        return
    counts = np.sum([run["counts"] for run in runs], axis=0)
    print(f"\nsubset {size} images per class: train/val/test {'/'.join(map(str, counts))} "
          f"(all seeds), {len(runs)} run(s), {len(runs[0]['phase'])} epochs")
    print(f"{'rule':<16}{'epochs kept (per seed)':>26}{'test acc (per seed)':>28}"
          f"{'pooled gain vs acc_strict, pp [95 %]':>44}")
    summary = {}
    reference: list[np.ndarray] = []
    for name, better in RULES.items():
        chosen, correct = [], []
        for run in runs:
            index = choose_epoch(_epoch_scores(run), list(run["phase"]), better)
            chosen.append(index + 1)
            correct.append(run["test"][index].argmax(axis=1) == run["test_labels"])
        if name == "acc_strict":
            reference = correct
        pooled = compare_paired(np.concatenate(reference), np.concatenate(correct))
        accuracies = [float(c.mean()) for c in correct]
        print(f"{name:<16}{str(chosen):>26}{' '.join(f'{a:.3f}' for a in accuracies):>28}"
              f"{-pooled.drop_pp:>+14.2f} [{-pooled.high_pp:+.2f}, {-pooled.low_pp:+.2f}]"
              f"  {pooled.counts.wrong_to_right} right / {pooled.counts.right_to_wrong} wrong")
        summary[name] = {"epochs": chosen, "test_accuracy": accuracies,
                         "pooled_gain_pp": -pooled.drop_pp,
                         "interval_pp": [-pooled.high_pp, -pooled.low_pp]}
    print(json.dumps({"size": size, "counts": counts.tolist(),
                      "seeds": [int(r["seed"]) for r in runs], "rules": summary}))


if __name__ == "__main__":
    main()
