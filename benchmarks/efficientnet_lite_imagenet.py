"""ImageNet top-1 of the converted EfficientNet-Lite models on Imagenette val.

Classifies every image of ``../shared/data/imagenette/val`` with the 1000-class Keras
model built by ``edgecls.models.build(name, weights="imagenet")``, preprocessed
exactly like the runtime (``read_image_bgr`` + ``prepare``: plain resize, RGB 0..255),
and prints top-1 over all 1000 classes and among the 10 Imagenette classes.

Usage:
    nice -n 5 .venv/bin/python benchmarks/efficientnet_lite_imagenet.py [--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Imagenette folder (WordNet id) -> ImageNet-1k class index (see shared/DATA.md).
IMAGENETTE_IDS = {
    "n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491,
    "n03028079": 497, "n03394916": 566, "n03417042": 569, "n03425413": 571,
    "n03445777": 574, "n03888257": 701,
}
DEFAULT_VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenette" / "val"
LITE0_FLOOR = 0.75


def list_images(val_dir: Path, limit: int | None) -> list[tuple[Path, int]]:
    """(image path, ImageNet class id) pairs; ``limit`` images per class if given."""
    items = []
    for wnid, class_id in IMAGENETTE_IDS.items():
        files = sorted(p for p in (val_dir / wnid).iterdir() if p.is_file())
        items += [(p, class_id) for p in files[:limit]]
    return items


def predict_all(model, items: list[tuple[Path, int]], size: int, batch: int = 32) -> np.ndarray:
    """Class probabilities of every image, preprocessed like the runtime."""
    from edgecls.runtime.preprocess import prepare, read_image_bgr

    outputs = []
    for start in range(0, len(items), batch):
        frames = [prepare(read_image_bgr(p), (size, size)) for p, _ in items[start:start + batch]]
        outputs.append(model.predict_on_batch(np.stack(frames)))
    return np.concatenate(outputs)


def top1_scores(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Top-1 over 1000 classes and top-1 restricted to the 10 Imagenette classes."""
    top1 = float(np.mean(probs.argmax(axis=1) == labels))
    ids = np.array(sorted(IMAGENETTE_IDS.values()))
    among10 = float(np.mean(ids[probs[:, ids].argmax(axis=1)] == labels))
    return top1, among10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", type=Path, default=DEFAULT_VAL)
    parser.add_argument("--models", nargs="+",
                        default=["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    parser.add_argument("--limit", type=int, default=None, help="images per class")
    args = parser.parse_args()
    if not args.val.is_dir():
        print(f"Imagenette val folder {args.val} is absent; nothing to measure")
        return 0

    from edgecls.models import build
    from edgecls.models.efficientnet_lite import VARIANTS

    items = list_images(args.val, args.limit)
    labels = np.array([c for _, c in items])
    print(f"{len(items)} Imagenette val images, runtime preprocessing (plain resize, RGB 0..255)")
    print(f"{'model':<20} {'size':>5} {'params':>10} {'top1/1000':>10} {'top1/10':>8} {'img/s':>7}")
    status = 0
    for name in args.models:
        size = VARIANTS[name].resolution
        model = build(name, weights="imagenet", include_top=True)
        start = time.perf_counter()
        probs = predict_all(model, items, size)
        rate = len(items) / (time.perf_counter() - start)
        top1, among10 = top1_scores(probs, labels)
        print(f"{name:<20} {size:>5} {model.count_params():>10,} {top1:>10.4f} {among10:>8.4f} "
              f"{rate:>7.1f}")
        if name == "efficientnet_lite0" and args.limit is None and top1 < LITE0_FLOOR:
            print(f"FAIL: efficientnet_lite0 top-1 {top1:.4f} < {LITE0_FLOOR}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
