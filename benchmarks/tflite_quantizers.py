"""TFLite INT8 quantizers side by side on one run: accuracy drop against the float Keras
model (paired, with the gate's 95 % interval) and quantization time per path.

Paths (``edgecls.export.tflite_quant.QUANTIZERS``): the converter's own full-integer
quantization (today's default), LiteRT's ``ai-edge-quantizer`` static int8 recipe on the
float flatbuffer, the converter's INT8 model with empirical bias correction, and the
converter's calibrate-only pass + MLIR quantizer with percentile activation ranges in
between (``export.tflite_ranges``; alone and with bias correction). Each
artifact is written by ``TFLiteExporter.export`` (metadata included) and validated through
the edgecls runtime (``export.validate``), exactly as ``edgecls export`` does, on the run's
held-out images (val + test; ``--every N`` keeps every Nth), calibrated on the default
preset (300 class-balanced training images). Times include the float conversion each
path needs.

Usage:
  .venv/bin/python benchmarks/tflite_quantizers.py RUN [--every 4] [--paths a,b,c]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.data.calibration import calibration_images
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.export import metadata as md
from edgecls.export.base import ExportSource, QuantizationConfig
from edgecls.export.gate import judge
from edgecls.export.tflite import TFLiteExporter
from edgecls.export.tflite_quant import QUANTIZERS
from edgecls.export.validate import validate_artifact
from edgecls.models.float_model import input_size, load_float_model, predict
from edgecls.rundir import RunDir
from edgecls.runtime.cpu import cpu_info


def held_out(split: Split, every: int, offset: int = 0) -> list[tuple[Path, int]]:
    """Every ``every``-th image of the run's val and test splits, from ``offset``."""
    items = [item for name in ("val", "test") if name in split.subsets for item in split.items(name)]
    return items[offset::every]


@dataclass
class Job:
    """A run made ready for INT8 comparisons: its float model (exported as a SavedModel
    into ``scratch``), held-out images with the float model's scores, calibration images."""

    model: Any
    size: tuple[int, int]
    labels: list[str]
    images: np.ndarray
    truth: np.ndarray
    float_probs: np.ndarray
    calibration: np.ndarray
    calibration_note: str
    scratch: Path

    def source(self, work_dir: Path) -> ExportSource:
        """The exporters' view of the float model, with ``work_dir`` for their scratch files."""
        return ExportSource(model=self.model, saved_model=self.scratch / "saved_model",
                            metadata=md.base_metadata(self.labels, self.size, self.model.name),
                            work_dir=work_dir)


def load_job(run_dir: Path, every: int, offset: int = 0, prefix: str = "edgecls_tflq_") -> Job:
    """Loads a run's model, its held-out images (every ``every``-th from ``offset``) and the
    default calibration preset, and exports the SavedModel the converters start from."""
    run = RunDir(run_dir)
    model = load_float_model(run.require_model())
    size = input_size(model)
    split = Split.load(run.split)
    labels = (run.read_labels() if run.labels.is_file() else None) or split.labels
    images, truth = load_arrays(held_out(split, every, offset), size)
    calibration, _, note = calibration_images(None, split, size)
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    model.export(str(scratch / "saved_model"), format="tf_saved_model", verbose=False)
    return Job(model, size, labels, images, truth, predict(model, images), calibration, note, scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory of `edgecls train`")
    parser.add_argument("--every", type=int, default=1, help="keep every Nth held-out image")
    parser.add_argument("--paths", default=",".join(QUANTIZERS), help="quantizers to compare")
    parser.add_argument("--max-drop", type=float, default=1.0, help="gate budget in pp")
    args = parser.parse_args()

    job = load_job(args.run, args.every)
    exporter = TFLiteExporter()
    quant = QuantizationConfig.for_int8(job.calibration)
    rows = []
    for path in args.paths.split(","):
        work = job.scratch / path
        work.mkdir()
        source = job.source(work)
        started = time.perf_counter()
        artifact = exporter.export(source, quant.replace(method=path), work / "model_int8.tflite")
        seconds = time.perf_counter() - started
        result = validate_artifact(artifact, job.images, job.truth, job.float_probs, job.labels)
        gate = judge(result, args.max_drop)
        rows.append((path, result, gate, seconds))
        print(f"done: {path} {gate.note} ({seconds:.0f} s)", flush=True)
    shutil.rmtree(job.scratch, ignore_errors=True)

    float_top1 = float(np.mean(job.float_probs.argmax(1) == job.truth))
    print(f"\nCPU: {cpu_info().summary()}; run {args.run}; {len(job.truth)} held-out images "
          f"(every {args.every}); float top-1 {100 * float_top1:.2f} %; "
          f"calibration: {job.calibration_note}\n")
    print("| quantizer | int8 top-1 % | drop pp | 95 % interval pp | right->wrong / wrong->right "
          "| top-1 agreement with float % | KL(float||int8) | quantize s | verdict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path, result, gate, seconds in rows:
        d = gate.drop
        print(f"| {path} | {100 * result.accuracy:.2f} | {d.drop_pp:+.2f} | "
              f"[{d.low_pp:+.2f}, {d.high_pp:+.2f}] | {d.counts.right_to_wrong} / "
              f"{d.counts.wrong_to_right} | {100 * result.agreement:.1f} | "
              f"{result.kl_divergence:.4f} | {seconds:.0f} | "
              f"{gate.verdict} |")


if __name__ == "__main__":
    main()
