"""ONNX INT8: NNCF's ONNX backend vs ONNX Runtime's ``quantize_static`` on the same float
ONNX model, the same calibration images and the same held-out images, side by side.

Per method: accuracy drop vs the float Keras model (through the edgecls runtime, with
the session options it picks on this CPU), top-1 agreement, quantization time, and
batch-1 p50 latency (measured round-robin over all artifacts in one loop, so load from
other processes hits them alike). ``nncf_accuracy_control`` validates on the run's val
split (never the test images the drop is measured on).

Usage:
  nice -n 5 .venv/bin/python benchmarks/onnx_quantizers.py --run RUN
  nice -n 5 .venv/bin/python benchmarks/onnx_quantizers.py --imagenette --every 1
  ... --methods nncf,minmax,percentile,entropy,nncf_accuracy_control
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecls.data.calibration import calibration_images, sample_items
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.export import metadata as md
from edgecls.export.base import ExportSource, QuantizationConfig, get_exporter
from edgecls.models.float_model import input_size, load_float_model, predict
from edgecls.export.validate import validate_artifact
from edgecls.rundir import RunDir
from edgecls.runtime.cpu import cpu_info
from edgecls.stats import DropBudget
from export_int8 import imagenette_run, p50_latency_ms


def prepare(run_dir: Path, work: Path) -> tuple[ExportSource, np.ndarray, tuple, tuple]:
    """The export source, calibration images, (test images, labels), (val images, labels)."""
    run = RunDir(run_dir)
    model = load_float_model(run.require_model())
    size = input_size(model)
    split = Split.load(run.split)
    calibration, _, _ = calibration_images(None, split, size)
    test = load_arrays(split.items("test"), size)
    val = load_arrays(sample_items(split.items("val"), 300), size)
    saved = work / "saved_model"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    meta = md.base_metadata(run.read_labels() if run.labels.is_file() else split.labels,
                            size, model.name)
    return ExportSource(model, saved, meta, work), calibration, test, val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory of `edgecls train`")
    parser.add_argument("--imagenette", action="store_true", help="EfficientNet-Lite0 on Imagenette")
    parser.add_argument("--every", type=int, default=1, help="keep every Nth Imagenette val image")
    parser.add_argument("--methods", default="nncf,minmax,percentile,nncf_accuracy_control")
    parser.add_argument("--max-drop", type=float, default=0.5, help="budget for accuracy control, pp")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgecls_onnx_quant_"))
    run = imagenette_run(work, args.every) if args.imagenette else args.run
    if run is None:
        parser.error("give --run RUN or --imagenette")
    source, calibration, (images, labels), val = prepare(run, work)
    float_probs = predict(source.model, images)
    exporter = get_exporter("onnx")
    rows, paths = [], []
    fp32 = work / "fp32.onnx"
    exporter.export(source, QuantizationConfig.for_float32(), fp32)
    for method in args.methods.split(","):
        quant = QuantizationConfig.for_int8(calibration, method=method, validation=val,
                                            max_drop=DropBudget(args.max_drop))
        path = work / f"{method}.onnx"
        started = time.perf_counter()
        exporter.export(source, quant, path)
        seconds = time.perf_counter() - started
        result = validate_artifact(path, images, labels, float_probs, source.metadata.labels)
        rows.append((method, result, seconds))
        paths.append(path)
        print(f"{method}: drop {result.drop_pp:+.2f} pp in {seconds:.0f} s", flush=True)
    image = np.random.default_rng(0).integers(0, 256, (1, *source.input_shape[1:3], 3))
    latency = p50_latency_ms([fp32, *paths], image.astype(np.float32), args.threads, args.iters)
    float_acc = float(np.mean(float_probs.argmax(1) == labels))
    print(f"\nCPU: {cpu_info().summary()} (machine shared); model {run}; "
          f"{len(labels)} test images, float top-1 {100 * float_acc:.2f}%; "
          f"{len(calibration)} calibration images; fp32 ONNX p50 {latency[0]:.2f} ms\n")
    print("| method | int8 top-1 | drop pp | agree % | quantize s | p50 ms | speed-up vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for (method, result, seconds), ms in zip(rows, latency[1:]):
        print(f"| {method} | {100 * result.accuracy:.2f} | {result.drop_pp:+.2f} | "
              f"{100 * result.agreement:.1f} | {seconds:.0f} | {ms:.2f} | {latency[0] / ms:.2f}x |")


if __name__ == "__main__":
    main()
