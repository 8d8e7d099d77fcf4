"""Which activation ranges for the ``converter+percentile-ranges`` TFLite INT8 path: one
calibrate-only pass of the converter, then the MLIR quantizer on the same calibrated model
with each candidate range rule, side by side against the float Keras model.

Rules: the converter's own absolute min/max (100), global nearest-rank percentiles of each
tensor's values over all calibration images (99.999, 99.99, 99.9), and the mean over images
of each image's min/max. Scored on a slice of the run's held-out images chosen to be
disjoint from ``tflite_quantizers.py --every 4`` (``--offset 2`` of every 4th), so the
choice is not made on the images the quantizer comparison reports.

Usage:
  .venv/bin/python benchmarks/tflite_percentiles.py RUN [--every 4] [--offset 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecls.data.calibration import calibration_images
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.export import metadata as md
from edgecls.export import tflite_ranges
from edgecls.export.base import ExportSource, QuantizationConfig
from edgecls.export.tflite import calibrated_model
from edgecls.export.validate import compare
from edgecls.models.float_model import input_size, load_float_model, predict
from edgecls.rundir import RunDir
from edgecls.runtime.cpu import cpu_info

PERCENTILES = (100.0, 99.999, 99.99, 99.9)


def int8_probabilities(model: bytes, images: np.ndarray) -> np.ndarray:
    """Dequantized outputs of a full-integer model on RGB 0..255 images."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    rows = []
    for image in images:
        codes = np.clip(np.round(image / scale + zero), 0, 255).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], codes[None])
        interpreter.invoke()
        rows.append((interpreter.get_tensor(out["index"])[0].astype(np.float64) - out_zero)
                    * out_scale)
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory of `edgecls train`")
    parser.add_argument("--every", type=int, default=4, help="keep every Nth held-out image")
    parser.add_argument("--offset", type=int, default=2, help="starting at this one")
    args = parser.parse_args()

    run = RunDir(args.run)
    model = load_float_model(run.require_model())
    size = input_size(model)
    split = Split.load(run.split)
    labels = (run.read_labels() if run.labels.is_file() else None) or split.labels
    items = [i for name in ("val", "test") if name in split.subsets for i in split.items(name)]
    images, truth = load_arrays(items[args.offset::args.every], size)
    calibration, _, note = calibration_images(None, split, size)
    float_probs = predict(model, images)
    scratch = Path(tempfile.mkdtemp(prefix="edgecls_tflpct_"))
    model.export(str(scratch / "saved_model"), format="tf_saved_model", verbose=False)
    source = ExportSource(model=model, saved_model=scratch / "saved_model", work_dir=scratch,
                          metadata=md.base_metadata(labels, size, model.name))
    quant = QuantizationConfig.for_int8(calibration)
    started = time.perf_counter()
    calibrated = calibrated_model(source, quant)
    calibrate_s = time.perf_counter() - started
    started = time.perf_counter()
    tails = tflite_ranges.activation_tails(calibrated, calibration.astype(np.float32),
                                           min(PERCENTILES))
    tails_s = time.perf_counter() - started
    rules = {f"percentile {p:g}": {i: t.value_range(p) for i, t in tails.items()}
             for p in PERCENTILES}
    rules["mean of per-image min/max"] = {i: t.mean_image_range() for i, t in tails.items()}
    print(f"\nCPU: {cpu_info().summary()}; run {args.run}; {len(truth)} held-out images "
          f"(every {args.every} from {args.offset}); float top-1 "
          f"{100 * np.mean(float_probs.argmax(1) == truth):.2f} %; calibration: {note}; "
          f"calibrate-only {calibrate_s:.0f} s, percentile statistics {tails_s:.0f} s\n")
    print("| ranges | drop pp [95 % interval] | right->wrong / wrong->right | agreement % | KL(float||int8) |")
    print("|---|---|---|---|---|")
    for name, ranges in rules.items():
        zeroed = {i: (min(lo, 0.0), max(hi, 0.0)) for i, (lo, hi) in ranges.items()}
        int8 = tflite_ranges.quantize(tflite_ranges.with_ranges(calibrated, zeroed), "uint8")
        result = compare(int8_probabilities(int8, images), float_probs, truth, labels)
        d = result.paired
        print(f"| {name} | {d.drop_pp:+.2f} [{d.low_pp:+.2f}, {d.high_pp:+.2f}] | "
              f"{d.counts.right_to_wrong} / {d.counts.wrong_to_right} | "
              f"{100 * result.agreement:.1f} | "
              f"{result.kl_divergence:.4f} |", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
