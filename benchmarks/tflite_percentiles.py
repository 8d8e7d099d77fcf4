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
import time
from pathlib import Path

import numpy as np

from edgecls.export import tflite_ranges
from edgecls.export.base import QuantizationConfig
from edgecls.export.tflite import calibrated_model
from edgecls.export.validate import compare
from edgecls.runtime.cpu import cpu_info
from tflite_quantizers import load_job

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

    job = load_job(args.run, args.every, args.offset, prefix="edgecls_tflpct_")
    calibration, images, truth, float_probs = job.calibration, job.images, job.truth, job.float_probs
    source = job.source(job.scratch)
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
          f"{100 * np.mean(float_probs.argmax(1) == truth):.2f} %; calibration: {job.calibration_note}; "
          f"calibrate-only {calibrate_s:.0f} s, percentile statistics {tails_s:.0f} s\n")
    print("| ranges | drop pp [95 % interval] | right->wrong / wrong->right | agreement % | KL(float||int8) |")
    print("|---|---|---|---|---|")
    for name, ranges in rules.items():
        zeroed = {i: (min(lo, 0.0), max(hi, 0.0)) for i, (lo, hi) in ranges.items()}
        int8 = tflite_ranges.quantize(tflite_ranges.with_ranges(calibrated, zeroed), "uint8")
        result = compare(int8_probabilities(int8, images), float_probs, truth, job.labels)
        d = result.paired
        print(f"| {name} | {d.drop_pp:+.2f} [{d.low_pp:+.2f}, {d.high_pp:+.2f}] | "
              f"{d.counts.right_to_wrong} / {d.counts.wrong_to_right} | "
              f"{100 * result.agreement:.1f} | "
              f"{result.kl_divergence:.4f} |", flush=True)
    shutil.rmtree(job.scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
