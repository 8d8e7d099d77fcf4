"""INT8 vs float per format, measured side by side in one run: accuracy drop, top-1
agreement, size ratio to fp32 and CPU latency (p50, batch 1) of INT8 and FP32.

Everything goes through ``edgecls.export.pipeline.export_run`` (exactly what
``edgecls export`` does: calibration, remedies, validation through the runtime) and the
edgecls runtime backends (with the CPU settings they choose automatically).

Two models:
  --run RUN        a run of ``edgecls train`` (e.g. on ../shared/data/flowers128).
  --imagenette     EfficientNet-Lite0 with ImageNet weights (1000 classes) validated on
                   the Imagenette val images (``--every N`` keeps every Nth; 1 = all 3925),
                   calibrated on 300 class-balanced Imagenette train images.

Usage:
  nice -n 5 .venv/bin/python benchmarks/export_int8.py --run RUN [--threads 2]
  nice -n 5 .venv/bin/python benchmarks/export_int8.py --imagenette --every 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FORMATS = ("tflite", "onnx", "openvino")


def imagenette_run(root: Path, every: int) -> Path:
    """A run dir holding EfficientNet-Lite0 (ImageNet head) and an Imagenette split whose
    labels are the 1000 ImageNet classes (Imagenette val = held out: val + test; train =
    calibration)."""
    from edgecls.atomic import write_text_atomic
    from edgecls.data.split import Split
    from edgecls.models import build

    data = SHARED / "data" / "imagenette"
    names = (SHARED / "models" / "coral" / "imagenet_labels.txt").read_text().splitlines()[1:1001]
    index = _imagenette_indices()
    def items(subset: str) -> list[tuple[str, int]]:
        files = sorted((data / subset).glob("*/*.JPEG"))
        return [(str(p.relative_to(data)), index[p.parent.name]) for p in files]

    # The gate compares on val + test: both must be images ImageNet did not train on, so
    # both come from Imagenette's official val set (every 10th as "val", where NNCF accuracy
    # control may tune on 300, which the gate then leaves out of that artifact's comparison).
    official = items("val")[::every]
    subsets = {"train": items("train"), "val": official[::10],
               "test": [t for i, t in enumerate(official) if i % 10]}
    run = root / "imagenette_lite0"
    run.mkdir(parents=True, exist_ok=True)
    Split(root=data, labels=names, subsets=subsets).save(run / "split.json")
    write_text_atomic(run / "labels.txt", "\n".join(names) + "\n")
    if not (run / "best.keras").is_file():
        build("efficientnet_lite0", weights="imagenet", input_size=224).save(run / "best.keras")
    return run


def _imagenette_indices() -> dict[str, int]:
    """Imagenette folder (WordNet id) -> ImageNet-1k index, from DATA.md's table."""
    return {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491,
            "n03028079": 497, "n03394916": 566, "n03417042": 569, "n03425413": 571,
            "n03445777": 574, "n03888257": 701}


def p50_latency_ms(paths: list[Path], image: np.ndarray, threads: int, iters: int) -> list[float]:
    """Median batch-1 latency of each model, measured interleaved (round-robin) so that
    load from other processes hits all models alike."""
    from edgecls.runtime import BackendOptions, load_backend

    backends = [load_backend(p, BackendOptions(threads=threads)) for p in paths]
    for backend in backends:
        for _ in range(10):
            backend.run(image)
    times: list[list[float]] = [[] for _ in backends]
    for _ in range(iters):
        for backend, samples in zip(backends, times):
            start = time.perf_counter()
            backend.run(image)
            samples.append(1000.0 * (time.perf_counter() - start))
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory of `edgecls train`")
    parser.add_argument("--imagenette", action="store_true", help="EfficientNet-Lite0 on Imagenette")
    parser.add_argument("--every", type=int, default=4, help="keep every Nth Imagenette val image")
    parser.add_argument("--out", type=Path, default=None, help="artifact folder (default: temp)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--calibration", default=None, help="calibration preset or folder")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--max-drop", type=float, default=1.0, help="gate in pp (remedies below it)")
    args = parser.parse_args()

    from edgecls.export.pipeline import ExportConfig, export_run
    from edgecls.runtime.cpu import cpu_info

    scratch = Path(tempfile.mkdtemp(prefix="edgecls_export_bench_"))
    run = imagenette_run(scratch, args.every) if args.imagenette else args.run
    if run is None:
        parser.error("give --run RUN or --imagenette")
    out = args.out or scratch / "artifacts"
    formats = args.formats.split(",")
    started = time.perf_counter()
    manifest = export_run(run, ExportConfig(out=out, formats=formats, precisions=["fp32", "int8"],
                                            calibration=args.calibration, max_drop=args.max_drop),
                          progress=lambda message, fraction: print(f"[{fraction:4.0%}] {message}",
                                                                   flush=True))
    export_minutes = (time.perf_counter() - started) / 60
    by_key = {(a.format, a.precision): a for a in manifest.artifacts}
    height, width = manifest.input_size
    image = np.random.default_rng(0).integers(0, 256, (1, height, width, 3)).astype(np.float32)
    print(f"\nCPU: {manifest.cpu}; threads {args.threads}; model {run}")
    print(f"float (Keras) top-1 {100 * manifest.float_accuracy:.2f}% on {manifest.held_out_images} "
          f"held-out images; export+validation took {export_minutes:.1f} min\n")
    header = ("format", "fp32 top-1", "int8 top-1", "drop pp", "95% interval", "agree %",
              "fp32 export s", "int8 export s", "int8 MB", "size ratio", "fp32 p50 ms",
              "int8 p50 ms", "int8 speedup", "verdict")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for fmt in formats:
        fp32, int8 = by_key[fmt, "fp32"], by_key[fmt, "int8"]
        latency = p50_latency_ms([out / fp32.path, out / int8.path], image, args.threads, args.iters)
        low, high = int8.interval_pp or (float("nan"), float("nan"))
        print(f"| {fmt} | {100 * fp32.accuracy:.2f} | {100 * int8.accuracy:.2f} | "
              f"{int8.drop_pp:+.2f} | [{low:+.2f}, {high:+.2f}] | {100 * int8.agreement:.1f} | "
              f"{fp32.export_seconds:.0f} | {int8.export_seconds:.0f} | "
              f"{int8.size_bytes / 1e6:.2f} | {int8.size_bytes / fp32.size_bytes:.3f} | "
              f"{latency[0]:.2f} | {latency[1]:.2f} | {latency[0] / latency[1]:.2f}x | "
              f"{int8.verdict} |", flush=True)
    print("\nautomatic settings per INT8 artifact (export settings; runtime backend settings):")
    for fmt in formats:
        int8 = by_key[fmt, "int8"]
        kept = [r.description for r in int8.remedies if r.kept]
        print(f"- {fmt}: {json.dumps(int8.settings)}; {json.dumps(int8.backend_settings)}"
              + (f"; remedy kept: {kept[0]}" if kept else "")
              + (f"; remedies tried: {len(int8.remedies)}" if int8.remedies else ""))
    print(f"- cpu: u8s8 overflow risk = {cpu_info().u8s8_overflow_risk}")
    total = sum(a.export_seconds for a in manifest.artifacts)
    print(f"- export time of the {len(manifest.artifacts)} artifacts (incl. validation and "
          f"remedies): {total:.0f} s")
    print(f"\nartifacts and manifest.json in {out}")


if __name__ == "__main__":
    main()
