"""Train MobileNetV3-Small at 128 px on flowers128 from scratch on this CPU, then measure
how much of a training step waits for input.

Prints val and test accuracy, training throughput (images/s over the epochs after the
first, which also traces the graph), and the same number of training steps timed on
the tf.data pipeline versus on batches already held in memory: the difference is the
share of a step spent waiting for input.

    nice -n 5 .venv/bin/python benchmarks/train_flowers.py [--epochs 10] [--out RUN]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "flowers128" / "all"


def main() -> None:
    args = _parse_args()
    if not args.data.is_dir():
        sys.exit(f"dataset {args.data} is absent (see ../shared/DATA.md)")
    out = args.out or Path(tempfile.mkdtemp(prefix="edgecls_flowers_")) / "run"
    config = _config(args, out)
    throughput = _Throughput()
    started = time.perf_counter()
    from edgecls.present.train_progress import RichProgress
    from edgecls.train.fit import train

    result = train(config, progress=None if args.no_progress else RichProgress,
                   callbacks=[throughput])
    total = time.perf_counter() - started
    step_pipeline, step_memory = _input_wait(config, out, args.steps)
    _print_results(config, result, throughput, total, step_pipeline, step_memory, args.steps)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a temp dir)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=20, help="steps timed per input source")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args()


def _config(args: argparse.Namespace, out: Path):
    from edgecls.train.config import TrainConfig

    return TrainConfig(data=str(args.data), out=str(out), model="mobilenet_v3_small",
                       img_size=128, weights="none", epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, patience=None)


def _keras_callback():
    import keras

    return keras.callbacks.Callback


class _Throughput(_keras_callback()):
    """Times the training batches of every epoch (validation excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[tuple[int, float]] = []  # (steps, seconds) of each epoch
        self._start = 0.0
        self._steps = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps = batch + 1
        self._train_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs.append((self._steps, self._train_end - self._start))


def _input_wait(config, out: Path, steps: int) -> tuple[float, float]:
    """Seconds per training step fed by the tf.data pipeline and from memory."""
    import keras

    from edgecls.data.split import Split
    from edgecls.rundir import RunDir
    from edgecls.train.fit import split_dataset

    run = RunDir(out)
    model = keras.saving.load_model(run.last_checkpoint)
    model.jit_compile = config.jit_compile
    pipeline, _ = split_dataset(Split.load(run.split), "train", (config.img_size,) * 2, config,
                           training=True)
    pipeline = pipeline.repeat()
    in_memory = pipeline.take(steps).cache().repeat()
    for _ in in_memory.take(steps):  # fill the cache: batches decoded and augmented once
        pass
    model.fit(in_memory, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)  # trace once
    return _time_steps(model, pipeline, steps), _time_steps(model, in_memory, steps)


def _time_steps(model, dataset, steps: int) -> float:
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    return (time.perf_counter() - start) / steps


def _print_results(config, result, throughput: _Throughput, total: float,
                   step_pipeline: float, step_memory: float, steps: int) -> None:
    test = result.test_metrics or {}
    k = test.get("top_k", 0)
    top_k = test.get(f"top_{k}_accuracy", float("nan"))
    from edgecls.data.split import Split
    from edgecls.rundir import RunDir

    train_images = len(Split.load(RunDir(result.run_dir).split).items("train"))
    steady = throughput.epochs[1:] or throughput.epochs
    images_per_s = len(steady) * train_images / sum(t for _, t in steady)
    wait = max(0.0, 1.0 - step_memory / step_pipeline)
    print(f"\nmobilenet_v3_small, 128 px, from scratch, {result.epochs} epochs, "
          f"batch {config.batch_size}, {os.cpu_count()} CPU cores; run {result.run_dir}")
    print(f"val accuracy (best epoch)   {result.best_val_accuracy:.4f}")
    print(f"test accuracy               {test.get('accuracy', float('nan')):.4f} "
          f"({test.get('num_samples', 0)} images; top-{k} {top_k:.4f})")
    print(f"training images/s           {images_per_s:.1f} (epochs 2+, training batches only)")
    print(f"wall time                   {total / 60:.1f} min (decode, trace, train, evaluate)")
    print(f"step time, tf.data pipeline {step_pipeline * 1000:.0f} ms ({steps} steps)")
    print(f"step time, in-memory batches {step_memory * 1000:.0f} ms ({steps} steps)")
    print(f"share of a step waiting for input: {wait:.1%} "
          f"(pipeline/in-memory = {step_pipeline / step_memory:.2f}x)")
    print(json.dumps({"val_accuracy": result.best_val_accuracy, "test_accuracy": test.get("accuracy"),
                      "train_images_per_s": images_per_s, "step_ms_pipeline": step_pipeline * 1000,
                      "step_ms_in_memory": step_memory * 1000, "input_wait_share": wait}))


if __name__ == "__main__":
    main()
