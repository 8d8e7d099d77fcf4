"""Structured channel pruning: accuracy and INT8 TFLite latency, side by side.

Trains EfficientNet-Lite0 (ImageNet weights) on ``--data`` (flowers128 by default;
Imagenette's train/val layout works too) unless ``--run`` gives a finished run, prunes
expansion channels for about ``--mac-reduction`` fewer multiply-accumulates (energy
criterion, least-squares refit of every block), fine-tunes (distillation from the
unpruned model by default, keeping the epoch best on validation), exports both runs to
INT8 TFLite with validation, then times the two interpreters in interleaved rounds with
the same thread count and prints the ratios.

    nice -n 5 .venv/bin/python benchmarks/structured_prune.py [--run RUN] [--epochs 3]
    nice -n 5 .venv/bin/python benchmarks/structured_prune.py \
        --data ../shared/data/imagenette --img-size 160 --train-epochs 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"


def main() -> None:
    args = _parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="edgecls_structured_"))
    run = args.run or _train(args, work / "base")
    pruned_run, report = _prune(args, run, work / "pruned")
    tflite = {name: _export(path, work / f"export-{name}", args.threads)
              for name, path in (("original", run), ("pruned", pruned_run))}
    latency = _interleaved_latency(tflite, args.threads, args.rounds, args.invokes)
    _print(report, tflite, latency, args)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--run", type=Path, help="a finished run to prune (skips training)")
    parser.add_argument("--work", type=Path, help="folder for the runs and exports")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--train-epochs", type=int, default=8)
    parser.add_argument("--mac-reduction", type=float, default=0.3)
    parser.add_argument("--criterion", default="energy")
    parser.add_argument("--no-reconstruct", dest="reconstruct", action="store_false")
    parser.add_argument("--per-block", action="store_true",
                        help="the same ratio in every block (default: one global threshold)")
    parser.add_argument("--no-distill", action="store_true")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tune epochs after pruning")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--invokes", type=int, default=30)
    return parser.parse_args()


def _train(args: argparse.Namespace, out: Path) -> Path:
    from edgecls.train.config import TrainConfig
    from edgecls.train.fit import train

    if not args.data.is_dir():
        sys.exit(f"dataset {args.data} is absent (see ../shared/DATA.md)")
    config = TrainConfig(data=str(args.data), out=str(out), model=args.model,
                         weights="imagenet", img_size=args.img_size, epochs=args.train_epochs,
                         patience=0)
    train(config)
    return out


def _prune(args: argparse.Namespace, run: Path, out: Path):
    from edgecls.optimize.structured import StructuredConfig, structured_prune_run

    config = StructuredConfig(mac_reduction=args.mac_reduction, criterion=args.criterion,
                              per_block=args.per_block, reconstruct=args.reconstruct,
                              epochs=args.epochs, learning_rate=args.lr,
                              distill=not args.no_distill)
    started = time.perf_counter()
    report = structured_prune_run(run, out, config)
    print(f"pruned at ratio {report.ratio:g} and fine-tuned in {time.perf_counter() - started:.0f} s")
    return out, report


def _export(run: Path, out: Path, threads: int):
    from edgecls.export.pipeline import ExportConfig, export_run
    from edgecls.runtime.base import BackendOptions

    manifest = export_run(run, ExportConfig(out=out, formats=["tflite"], precisions=["int8"],
                                            max_drop=100.0, remedies=False,
                                            options=BackendOptions(threads=threads)))
    artifact = manifest.artifacts[0]
    return {"path": out / artifact.path, "accuracy": artifact.accuracy,
            "float_accuracy": manifest.float_accuracy, "size": artifact.size_bytes}


def _interleaved_latency(tflite: dict, threads: int, rounds: int, invokes: int) -> dict:
    """Median ms per image of each model; the models take turns within every round."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = {}
    for name, info in tflite.items():
        interpreter = Interpreter(model_path=str(info["path"]), num_threads=threads)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        image = np.random.default_rng(0).integers(0, 256, detail["shape"]).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], image)
        interpreter.invoke()  # warm-up
        interpreters[name] = interpreter
    times: dict[str, list[float]] = {name: [] for name in interpreters}
    for _ in range(rounds):
        for name, interpreter in interpreters.items():
            started = time.perf_counter()
            for _ in range(invokes):
                interpreter.invoke()
            times[name].append(1000 * (time.perf_counter() - started) / invokes)
    return {name: float(np.median(values)) for name, values in times.items()}


def _print(report, tflite: dict, latency: dict, args: argparse.Namespace) -> None:
    before, after = report.before, report.after
    data = Path(_run_config(report.source_run).get("data", args.data))
    data = data.name if data.name not in ("all", "train") else data.parent.name
    print(f"\n{args.model} {args.img_size} px on {data}, criterion {report.criterion}, "
          f"{'per-block' if report.per_block else 'global'} ratio {report.ratio:g}, "
          f"{'least-squares refit' if report.reconstruct else 'BatchNorm recalibration'}, "
          f"fine-tune {report.epochs} epochs{' with distillation' if report.distill else ''}")
    print(f"{'':28}{'original':>14}{'pruned':>14}{'pruned/orig':>13}")
    rows = [("parameters", before.parameters, after.parameters),
            ("MACs (M)", before.macs / 1e6, after.macs / 1e6),
            ("INT8 TFLite size (KB)", tflite["original"]["size"] / 1024, tflite["pruned"]["size"] / 1024),
            (f"INT8 latency ms ({args.threads} thr)", latency["original"], latency["pruned"])]
    for label, a, b in rows:
        print(f"{label:28}{a:14,.2f}{b:14,.2f}{b / a:13.3f}")
    print(f"{'float test accuracy %':28}{100 * report.accuracy_before:14.2f}"
          f"{100 * report.accuracy_after:14.2f}{100 * (report.accuracy_after - report.accuracy_before):+10.2f} pp")
    print(f"{'INT8 test accuracy %':28}{100 * tflite['original']['accuracy']:14.2f}"
          f"{100 * tflite['pruned']['accuracy']:14.2f}"
          f"{100 * (tflite['pruned']['accuracy'] - tflite['original']['accuracy']):+10.2f} pp")
    print(f"pruned float accuracy before fine-tune: {100 * report.accuracy_pruned:.2f} %")
    print("validation top-1 before / after each fine-tune epoch: "
          + ", ".join(f"{100 * a:.2f}" for a in report.val_accuracy)
          + f" % (kept epoch {report.best_epoch})")


def _run_config(run: str) -> dict:
    import yaml

    path = Path(run) / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


if __name__ == "__main__":
    main()
