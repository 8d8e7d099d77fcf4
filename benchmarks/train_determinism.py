"""What `--deterministic` costs, and how far two identical runs drift apart without it.

Trains the same small real configuration several times, each in a fresh process (op
determinism, once on, stays on for a process), alternating runs without and with the
flag so that load from other processes hits both alike. Same data, split, seed and
options every time. Prints per run: training seconds (the history's epoch times), val and
test accuracy, balanced accuracy; then the time ratio deterministic / free (medians)
and the spread (max - min) of val and test accuracy within each group.

    .venv/bin/python benchmarks/train_determinism.py [--free-runs 3] [--det-runs 2] \\
        [--model efficientnet_lite0 --weights imagenet --img-size 128 --epochs 1] [--json out.json]

The default is EfficientNet-Lite0 from ImageNet weights, one epoch of its head phase (frozen
backbone) on flowers128: about 6 minutes a run on two busy cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"
SCHEMA_VERSION = 1


def main() -> None:
    args = _parse_args()
    if args.one_run:
        _one_run(args)
        return
    if not args.data.is_dir():
        sys.exit(f"dataset {args.data} is absent (see ../shared/DATA.md)")
    root = args.out or Path(tempfile.mkdtemp(prefix="edgecls_determinism_"))
    results = [_spawn(args, root / f"{'det' if det else 'free'}{index}", det)
               for index, det in _schedule(args.free_runs, args.det_runs)]
    summary = _summary(results)
    _print(args, results, summary)
    if args.json:
        args.json.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "config": _config_dict(args),
                                         "runs": results, "summary": summary}, indent=1))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temp dir)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--head-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--free-runs", type=int, default=3)
    parser.add_argument("--det-runs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--one-run", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deterministic", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def _schedule(free: int, det: int) -> list[tuple[int, bool]]:
    """free1, det1, free2, det2, ... interleaved, the longer group's rest at the end."""
    order = []
    for index in range(max(free, det)):
        if index < free:
            order.append((index + 1, False))
        if index < det:
            order.append((index + 1, True))
    return order


def _config_dict(args: argparse.Namespace) -> dict:
    return {"data": str(args.data), "model": args.model, "weights": args.weights,
            "img_size": args.img_size, "epochs": args.epochs, "head_epochs": args.head_epochs,
            "batch_size": args.batch_size, "patience": None, "seed": 0}


def _spawn(args: argparse.Namespace, out: Path, deterministic: bool) -> dict:
    command = [sys.executable, __file__, "--one-run", str(out), "--data", str(args.data),
               "--model", args.model, "--weights", args.weights, "--img-size", str(args.img_size),
               "--epochs", str(args.epochs), "--head-epochs", str(args.head_epochs),
               "--batch-size", str(args.batch_size)] + (["--deterministic"] if deterministic else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"run {out.name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(name=out.name, deterministic=deterministic,
                  process_seconds=round(time.perf_counter() - started, 1))
    print(f"{out.name}: train {result['train_seconds']:.0f} s, val {result['val_accuracy']:.4f}, "
          f"test {result['test_accuracy']:.4f}", flush=True)
    return result


def _one_run(args: argparse.Namespace) -> None:
    """Trains one run in this process and prints its figures as one JSON line."""
    from edgecls.rundir import RunDir
    from edgecls.train.checkpoint import read_history
    from edgecls.train.config import TrainConfig
    from edgecls.train.fit import train

    config = TrainConfig(data=str(args.data), out=str(args.one_run), model=args.model,
                         weights=args.weights, img_size=args.img_size, epochs=args.epochs,
                         head_epochs=args.head_epochs, batch_size=args.batch_size, patience=None,
                         deterministic=args.deterministic)
    result = train(config)
    history = read_history(RunDir(args.one_run))
    metrics = result.test_metrics or {}
    print(json.dumps({"train_seconds": sum(float(row["seconds"]) for row in history),
                      "epoch_seconds": [float(row["seconds"]) for row in history],
                      "val_accuracy": result.best_val_accuracy,
                      "test_accuracy": metrics.get("accuracy"),
                      "test_balanced_accuracy": metrics.get("balanced_accuracy"),
                      "test_images": metrics.get("num_samples")}))


def _summary(results: list[dict]) -> dict:
    groups = {name: [r for r in results if r["deterministic"] == det]
              for name, det in (("free", False), ("deterministic", True))}
    out: dict = {}
    for name, runs in groups.items():
        if not runs:
            continue
        out[name] = {"runs": len(runs),
                     "median_train_seconds": statistics.median(r["train_seconds"] for r in runs),
                     **{f"{key}_spread_pp": round(100 * (max(r[key] for r in runs) - min(r[key] for r in runs)), 2)
                        for key in ("val_accuracy", "test_accuracy", "test_balanced_accuracy")}}
    if "free" in out and "deterministic" in out:
        out["time_ratio_deterministic_over_free"] = round(
            out["deterministic"]["median_train_seconds"] / out["free"]["median_train_seconds"], 3)
    return out


def _print(args: argparse.Namespace, results: list[dict], summary: dict) -> None:
    print(f"\n{args.model} weights={args.weights} {args.img_size} px, {args.epochs} epochs "
          f"(head {args.head_epochs}), batch {args.batch_size}, seed 0, data {args.data}")
    print(f"{'run':<6} {'train s':>8} {'epochs s':>16} {'val':>7} {'test':>7} {'bal.':>7}")
    for r in results:
        epochs = "/".join(f"{s:.0f}" for s in r["epoch_seconds"])
        print(f"{r['name']:<6} {r['train_seconds']:8.1f} {epochs:>16} {r['val_accuracy']:7.4f} "
              f"{r['test_accuracy']:7.4f} {r['test_balanced_accuracy']:7.4f}")
    for name in ("free", "deterministic"):
        if name in summary:
            s = summary[name]
            print(f"{name}: {s['runs']} runs, median train {s['median_train_seconds']:.1f} s, spread "
                  f"val {s['val_accuracy_spread_pp']:.2f} pp, test {s['test_accuracy_spread_pp']:.2f} pp, "
                  f"balanced {s['test_balanced_accuracy_spread_pp']:.2f} pp")
    if "time_ratio_deterministic_over_free" in summary:
        print(f"time ratio deterministic / free (median training time): "
              f"{summary['time_ratio_deterministic_over_free']:.2f}x")


if __name__ == "__main__":
    main()
