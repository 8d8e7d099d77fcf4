"""The next-model loop on real data: OLD trained on part of flowers128, NEW continued from
it (`train --init-from`) after the dataset grew (the rest of the images, and a fifth class),
then `compare NEW OLD` and a deploy-style judgement.

OLD sees daisy, dandelion, rose and sunflower, the first ``--old-share`` of each class in
name order; NEW's dataset adds the remaining images of those classes ("collected since")
and the tulip class. The dataset folders hold symlinks to ../shared (read-only). Both
trainings are EfficientNet-Lite0 from ImageNet weights, head phase only on cached
features. Prints the split inheritance check (OLD's held-out images still held out), both
runs' test accuracy, the comparison (overall, new images, OLD's test images, per class,
tulip apart), and the seconds each stage took.

    nice -n 5 .venv/bin/python benchmarks/continual_compare.py [--epochs 3] [--img-size 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"
OLD_CLASSES = ("daisy", "dandelion", "rose", "sunflower")
NEW_CLASS = "tulip"


def main() -> None:
    args = _parse_args()
    if not DATA.is_dir():
        sys.exit(f"dataset {DATA} is absent (see ../shared/DATA.md)")
    work = Path(tempfile.mkdtemp(prefix="edgecls_continual_"))
    data = work / "data"
    _link(data, OLD_CLASSES, 0.0, args.old_share)
    timings = {}
    old = _train(args, data, work / "old", None, timings, "train OLD")
    _link(data, OLD_CLASSES, args.old_share, 1.0)
    _link(data, (NEW_CLASS,), 0.0, 1.0)
    new = _train(args, data, work / "new", old, timings, "train NEW --init-from OLD")
    _check_held_out(old, new)
    from edgecls.export.compare import compare_paths

    started = time.perf_counter()
    result = compare_paths(new, old)
    timings["compare NEW OLD"] = time.perf_counter() - started
    _print(result, timings)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="head epochs of each training")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--old-share", type=float, default=0.5, help="share of each class OLD sees")
    return parser.parse_args()


def _link(data: Path, classes: tuple[str, ...], start: float, end: float) -> None:
    """Symlinks the [start, end) share (name order) of each class's images into ``data``."""
    for name in classes:
        files = sorted((DATA / name).iterdir())
        folder = data / name
        folder.mkdir(parents=True, exist_ok=True)
        for path in files[int(start * len(files)):int(end * len(files))]:
            (folder / path.name).symlink_to(path)


def _train(args: argparse.Namespace, data: Path, out: Path, init_from: Path | None,
           timings: dict[str, float], label: str) -> Path:
    from edgecls.train.config import TrainConfig
    from edgecls.train.fit import train

    config = TrainConfig(data=str(data), out=str(out), model="efficientnet_lite0", weights="imagenet",
                         img_size=args.img_size, epochs=args.epochs, head_epochs=args.epochs,
                         patience=None, init_from=str(init_from) if init_from else None)
    if init_from:
        config.model = config.weights = config.img_size = None  # inherited
    started = time.perf_counter()
    result = train(config)
    timings[label] = time.perf_counter() - started
    metrics = result.test_metrics or {}
    print(f"{label}: test accuracy {metrics.get('accuracy', float('nan')):.4f} on "
          f"{metrics.get('num_samples')} images, best val {result.best_val_accuracy:.4f}")
    return out


def _check_held_out(old: Path, new: Path) -> None:
    from edgecls.data.split import Split

    old_split, new_split = Split.load(old / "split.json"), Split.load(new / "split.json")
    where = {rel: subset for subset, entries in new_split.subsets.items() for rel, _ in entries}
    pairs = [(where.get(rel), subset) for subset, entries in old_split.subsets.items() for rel, _ in entries]
    moved = sum(now is not None and now != subset for now, subset in pairs)
    dropped = sum(now is None for now, _ in pairs)  # e.g. duplicates now filed under two classes
    print(f"split inherited (salt {new_split.seed}, fractions {new_split.fractions}): of OLD's "
          f"{len(pairs)} images {moved} changed subset in NEW, {dropped} left out by NEW's data check")


def _print(result, timings: dict[str, float]) -> None:
    def row(name: str, r) -> None:
        if r is None:
            print(f"  {name:<22} -")
            return
        d = r.paired
        print(f"  {name:<22} n={r.images:<4} OLD {100 * r.old_accuracy:6.2f}%  NEW {100 * r.new_accuracy:6.2f}%  "
              f"{0.0 - d.drop_pp:+6.2f} pp [{0.0 - d.high_pp:+.2f}, {0.0 - d.low_pp:+.2f}]  {r.verdict}")

    print(result.summary())
    row("all held-out", result.overall)
    row("new since OLD", result.new_images)
    row("OLD's test images", result.old_test_images)
    for name, r in result.per_class.items():
        row(f"class {name}", r)
    for name, info in result.new_only_classes.items():
        print(f"  class {name} (only NEW): {info['images']} images, NEW {info['new_accuracy']}")
    print(f"  left out (OLD trained on them): {result.excluded_trained_by_old}")
    for label, seconds in timings.items():
        print(f"{label}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
