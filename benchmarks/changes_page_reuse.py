"""The changes page (``edgecls export --explain``) with and without the export's stored
predictions, side by side in one process.

Exports the run's INT8 artifacts (``export_run``, which writes ``predictions.json``), then
writes ``changes.html`` twice: recomputing which held-out images changed top-1 (the float
model and every artifact over all held-out images, as before predictions.json existed), and
reusing the export's predictions. Both explain the same images with RISE; the difference
is the re-run of the models over the held-out images.

Usage:
  .venv/bin/python benchmarks/changes_page_reuse.py RUN --out DIR [--formats tflite] [--shown 4]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgecls.explain.changes import quantization_changes
from edgecls.export.pipeline import ExportConfig, export_run
from edgecls.export.predictions import PREDICTIONS_NAME
from edgecls.runtime.cpu import cpu_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run directory of `edgecls train`")
    parser.add_argument("--out", type=Path, required=True, help="export folder")
    parser.add_argument("--formats", default="tflite")
    parser.add_argument("--shown", type=int, default=4, help="images explained per artifact")
    parser.add_argument("--reuse-export", action="store_true",
                        help="use the export already in --out (with predictions.json)")
    args = parser.parse_args()
    print(f"CPU: {cpu_info().summary()}")
    if not (args.reuse_export and (args.out / PREDICTIONS_NAME).is_file()):
        started = time.perf_counter()
        manifest = export_run(args.run, ExportConfig(out=args.out, formats=args.formats.split(","),
                                                     precisions=["int8"], remedies=False))
        print(f"export (no remedies): {time.perf_counter() - started:.1f} s, "
              f"{manifest.held_out_images} held-out images")
    artifacts = sorted(p for p in args.out.iterdir() if "int8" in p.name and p.suffix != ".bin")
    timings = {}
    for label, reuse in (("recompute", False), ("reuse predictions.json", True),
                         ("recompute again", False), ("reuse again", True)):
        started = time.perf_counter()
        changes = quantization_changes(args.run, artifacts, shown=args.shown, reuse=reuse)
        timings[label] = time.perf_counter() - started
        counts = ", ".join(f"{c.artifact.name} {c.changed}/{c.total}"
                           f"{' (stored)' if c.from_export else ''}" for c in changes)
        print(f"{label:24s} {timings[label]:7.1f} s  changed: {counts}")
    for before, after in (("recompute", "reuse predictions.json"), ("recompute again", "reuse again")):
        print(f"{after} / {before}: {timings[after] / timings[before]:.2f}x "
              f"({timings[before] - timings[after]:.1f} s saved)")


if __name__ == "__main__":
    main()
