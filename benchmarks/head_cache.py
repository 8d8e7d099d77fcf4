"""The frozen-backbone head phase on images versus on cached features, side by side.

Trains the same configuration (default: EfficientNet-Lite0 from ImageNet weights on
flowers128 at 128 px, head phase then fine-tuning) once per variant in this process:
the head phase on images (``head_cache: false``, the path before the cache), then on
cached features with each number of augmented views asked for. Same data, split, seed and
options every time; load from other processes hits all variants alike only roughly
(they run one after another), so quote the machine's state with the figures.

Prints per variant: the caching pass, head epoch times (history.csv), the head phase in
total (from its start, caching included, to the end of its last epoch), the val accuracy
at the end of the head phase, the best val accuracy, test accuracy and the whole run.

    .venv/bin/python benchmarks/head_cache.py [--img-size 128] [--epochs 8 --head-epochs 4] \\
        [--views 0 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"
SCHEMA_VERSION = 1


def main() -> None:
    args = _parse_args()
    if not args.data.is_dir():
        sys.exit(f"dataset {args.data} is absent (see ../shared/DATA.md)")
    root = args.out or Path(tempfile.mkdtemp(prefix="edgecls_head_cache_"))
    variants = [("images", False, 0)] + [(f"cache, {v} views", True, v) for v in args.views]
    results = []
    for name, cached, views in variants:
        results.append({"variant": name, **_run(args, root / name.replace(", ", "_").replace(" ", ""),
                                                 cached, views)})
        print(json.dumps(results[-1]), flush=True)
    _print(args, results)
    if args.json:
        args.json.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "config": _config_dict(args),
                                         "cpu": _cpu(), "results": results}, indent=1))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temp dir)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--head-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--views", type=int, nargs="*", default=[0, 2],
                        help="augmented views per image of each cached variant")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args()


def _config_dict(args: argparse.Namespace) -> dict[str, Any]:
    return {"data": str(args.data), "model": args.model, "weights": args.weights,
            "img_size": args.img_size, "epochs": args.epochs, "head_epochs": args.head_epochs,
            "batch_size": args.batch_size, "views": args.views}


def _cpu() -> str:
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    vnni = "AVX-512 VNNI" if "avx512_vnni" in flags else "no VNNI"
    return f"{names[0] if names else 'unknown'}, {os.cpu_count()} cores, {vnni}"


class _Clock:
    """Progress factory and Keras callback recording when the head phase starts, how long
    the caching passes take and when each epoch ends."""

    def __init__(self) -> None:
        self.head_start: float | None = None
        self.caching = 0.0
        self.epoch_ends: list[float] = []

    def factory(self, name: str, first_epoch: int) -> Any:
        import keras

        if name == "head" and self.head_start is None:
            self.head_start = time.perf_counter()
        clock = self

        class _Timer(keras.callbacks.Callback):
            def on_predict_begin(self, logs: dict | None = None) -> None:
                self.started = time.perf_counter()

            def on_predict_end(self, logs: dict | None = None) -> None:
                if getattr(self, "started", None) is not None:
                    clock.caching += time.perf_counter() - self.started
                    self.started = None

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                if name in ("head", "finetune", "scratch"):
                    clock.epoch_ends.append(time.perf_counter())

        return _Timer()


def _run(args: argparse.Namespace, out: Path, cached: bool, views: int) -> dict[str, Any]:
    from edgecls.rundir import RunDir
    from edgecls.train.checkpoint import read_history
    from edgecls.train.config import TrainConfig
    from edgecls.train.fit import train

    config = TrainConfig(data=str(args.data), out=str(out), model=args.model, weights=args.weights,
                         img_size=args.img_size, epochs=args.epochs, head_epochs=args.head_epochs,
                         batch_size=args.batch_size, patience=None, head_cache=cached,
                         head_cache_views=views)
    clock = _Clock()
    started = time.perf_counter()
    result = train(config, progress=clock.factory)
    total = time.perf_counter() - started
    rows = read_history(RunDir(out))
    head = [row for row in rows if row["phase"] == "head"]
    head_seconds = [float(row["seconds"]) for row in head]
    test = result.test_metrics or {}
    return {"caching_s": clock.caching,
            "head_epoch_s": head_seconds,
            "head_epoch_median_s": statistics.median(head_seconds),
            "head_total_s": clock.epoch_ends[len(head) - 1] - (clock.head_start or started),
            "head_val_accuracy": float(head[-1]["val_accuracy"]),
            "best_val_accuracy": result.best_val_accuracy,
            "test_accuracy": test.get("accuracy"),
            "test_balanced_accuracy": test.get("balanced_accuracy"),
            "run_s": total, "run_dir": str(out)}


def _print(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    print(f"\n{args.model} ({args.weights}), {args.img_size} px, {args.head_epochs} head + "
          f"{args.epochs - args.head_epochs} fine-tune epochs, batch {args.batch_size}; {_cpu()}")
    print(f"{'variant':<16} {'caching':>8} {'head ep.':>9} {'head total':>11} {'head val':>9} "
          f"{'best val':>9} {'test':>7} {'run':>8}")
    base = results[0]["head_total_s"]
    for r in results:
        test = r["test_accuracy"]
        print(f"{r['variant']:<16} {r['caching_s']:7.1f}s {r['head_epoch_median_s']:8.2f}s "
              f"{r['head_total_s']:10.1f}s {r['head_val_accuracy']:9.4f} {r['best_val_accuracy']:9.4f} "
              f"{(test if test is not None else float('nan')):7.4f} {r['run_s']:7.0f}s")
    for r in results[1:]:
        print(f"head phase {r['variant']}: {base / r['head_total_s']:.2f}x faster than on images")


if __name__ == "__main__":
    main()
