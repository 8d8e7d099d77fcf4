"""Correctness on real data: the Coral INT8 ImageNet models on Imagenette val through
``edgecls.runtime.Classifier`` must reproduce DATA.md (e.g. mobilenet_v2 0.751 top-1
over 1000 classes, within 0.005).

Usage: nice -n 5 .venv/bin/python benchmarks/coral_accuracy.py [--every N] [--threads T]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from edgecls.runtime import BackendOptions, Classifier, read_image_bgr

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IMAGENET_INDEX = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
                  "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701}
EXPECTED = {  # DATA.md: (top-1 over 1000 classes, top-1 among the 10 Imagenette classes)
    "mobilenet_v2_1.0_224_quant.tflite": (0.751, 0.981),
    "tf2_mobilenet_v2_1.0_224_ptq.tflite": (0.737, 0.985),
    "mobilenet_v1_0.25_128_quant.tflite": (0.407, 0.865),
}


def evaluate(model: Path, images: list[Path], threads: int) -> tuple[float, float, float]:
    """Top-1 over 1000 classes, top-1 among the 10 classes, and ms per image end to end."""
    clf = Classifier(model, labels=model.parent / "imagenet_labels.txt", options=BackendOptions(threads=threads))
    ten = np.array(sorted(IMAGENET_INDEX.values())) + 1  # output k+1 is ImageNet class k
    hits_1000 = hits_10 = 0
    started = time.perf_counter()
    for path in images:
        probabilities = clf.probabilities(read_image_bgr(path))
        truth = IMAGENET_INDEX[path.parent.name]
        hits_1000 += int(np.argmax(probabilities[1:])) == truth
        hits_10 += int(ten[np.argmax(probabilities[ten])]) == truth + 1
    elapsed = time.perf_counter() - started
    return hits_1000 / len(images), hits_10 / len(images), 1000 * elapsed / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="use every Nth val image (1 = all 3925)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    images = sorted((SHARED / "data" / "imagenette" / "val").glob("*/*.JPEG"))[:: args.every]
    if not images:
        raise SystemExit(f"no Imagenette val images under {SHARED}")
    print(f"{len(images)} Imagenette val images, {args.threads} threads, "
          "LiteRT via edgecls.runtime.Classifier")
    print(f"{'model':40s} {'top1@1000':>9s} {'DATA.md':>7s} {'diff':>7s} "
          f"{'top1@10':>8s} {'DATA.md':>7s} {'ms/img':>7s}")
    for name, (want_1000, want_10) in EXPECTED.items():
        top1, top10, ms = evaluate(SHARED / "models" / "coral" / name, images, args.threads)
        print(f"{name:40s} {top1:9.4f} {want_1000:7.3f} {top1 - want_1000:+7.4f} {top10:8.4f} {want_10:7.3f} {ms:7.2f}")


if __name__ == "__main__":
    main()
