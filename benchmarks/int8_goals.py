"""The INT8 goals of issue 12, side by side: per model and format, the drop with its 95 %
interval, the predictions changed each way, the verdict, the remedy kept and the export time.

Each job runs ``edgecls export`` exactly as a user would (a subprocess of the CLI, so the
code under test can be another checkout: ``--code DIR`` puts DIR first on PYTHONPATH,
e.g. an older commit in a ``git worktree`` for before/after export times), records the
wall time next to the manifest (``OUT/timing.json``) and prints one table over all jobs.
Older manifests (schema 1: no interval) print "-" where a field is missing.

Usage:
  .venv/bin/python benchmarks/int8_goals.py --job v3l=/work/runs/v3l --job b0=/work/runs/b0s
  .venv/bin/python benchmarks/int8_goals.py --imagenette --out /tmp/goals
  .venv/bin/python benchmarks/int8_goals.py --job flowers=RUN --code /tmp/old --label before
  .venv/bin/python benchmarks/int8_goals.py --table OUT1 OUT2 ...   # print saved results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from export_int8 import imagenette_run

CLI = Path(sys.executable).with_name("edgecls")


def run_export(name: str, run: Path, out: Path, code: Path | None, args: argparse.Namespace) -> Path:
    """``edgecls export`` of ``run`` into ``out``; returns ``out`` (manifest + timing.json)."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = f"{code}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    command = [str(CLI), "export", str(run), "--out", str(out), "--formats", args.formats,
               "--precision", args.precision, "--max-drop", str(args.max_drop)]
    if not args.explain and _has_option(env, "--no-explain"):
        command.append("--no-explain")
    print(f"[{name}] {' '.join(command)}", flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, env=env)
    seconds = time.perf_counter() - started
    timing = {"job": name, "run": str(run), "code": str(code or "installed"),
              "wall_seconds": round(seconds, 1), "exit_code": completed.returncode,
              "command": command}
    out.mkdir(parents=True, exist_ok=True)
    (out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    return out


def _has_option(env: dict[str, str], option: str) -> bool:
    """Whether the edgecls under test knows a CLI option (older checkouts lack some)."""
    text = subprocess.run([str(CLI), "export", "--help"], env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True).stdout
    return option in text


def rows(out: Path) -> list[list[str]]:
    """Table rows of one export folder (its manifest.json and timing.json)."""
    manifest = json.loads((out / "manifest.json").read_text())
    timing_file = out / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    job = timing.get("job", out.name)
    lines = []
    for art in manifest["artifacts"]:
        interval = art.get("interval_pp")
        kept = [r["description"] for r in art.get("remedies", []) if r.get("kept")]
        lines.append([
            job, f"{art['format']} {art['precision']}", f"{100 * art['float_accuracy']:.2f}",
            f"{art['drop_pp']:+.2f}",
            f"[{interval[0]:+.2f}, {interval[1]:+.2f}]" if interval else "-",
            f"{art.get('right_to_wrong', '-')}/{art.get('wrong_to_right', '-')}",
            str(art.get("images") or manifest.get("held_out_images") or manifest.get("test_images", "-")),
            art.get("verdict", "passed" if art.get("passed") else "failed"),
            _short(kept[0]) if kept else ("-" if not art.get("remedies") else
                                          f"none of {len(art['remedies'])} kept"),
            f"{art.get('export_seconds', 0):.0f}"])
    total = sum(a.get("export_seconds", 0) for a in manifest["artifacts"])
    wall = timing.get("wall_seconds")
    lines.append([job, "all artifacts", "", "", "", "", "", "", "",
                  f"{total:.0f}" + (f" (wall {wall:.0f})" if wall else "")])
    return lines


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def print_table(outs: list[Path]) -> None:
    """One markdown table over the export folders."""
    header = ["job", "artifact", "float %", "drop pp", "95% interval", "-/+", "n", "verdict",
              "remedy kept", "export s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for out in outs:
        for row in rows(out):
            print("| " + " | ".join(row) + " |")
        manifest = json.loads((out / "manifest.json").read_text())
    print(f"\nCPU: {manifest.get('cpu', '?')} (shared with other work; times are wall seconds "
          "incl. validation and remedies; 'all artifacts' wall includes model loading and, "
          "where on, the RISE page of changed predictions)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", action="append", default=[], metavar="NAME=RUN",
                        help="a run of `edgecls train` to export (repeatable)")
    parser.add_argument("--imagenette", action="store_true",
                        help="Lite0 ImageNet weights (1000 classes), all 3925 Imagenette val held out")
    parser.add_argument("--out", type=Path, default=Path("int8_goals"), help="folder for the exports")
    parser.add_argument("--label", default="", help="suffix of the export folders (e.g. before)")
    parser.add_argument("--code", type=Path, default=None, help="edgecls checkout to run (PYTHONPATH)")
    parser.add_argument("--formats", default="tflite,onnx,openvino")
    parser.add_argument("--precision", default="fp32,int8")
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--explain", action="store_true", help="keep the RISE changes page (slow)")
    parser.add_argument("--table", type=Path, nargs="*", help="only print these export folders")
    args = parser.parse_args()
    if args.table:
        print_table(args.table)
        return
    jobs = [tuple(job.split("=", 1)) for job in args.job]
    if args.imagenette:
        jobs.append(("imagenette_lite0", str(imagenette_run(args.out / "runs", every=1))))
    if not jobs:
        parser.error("give --job NAME=RUN, --imagenette or --table")
    outs = []
    for name, run in jobs:
        out = args.out / (f"{name}_{args.label}" if args.label else name)
        outs.append(run_export(name, Path(run), out, args.code, args))
    print_table(outs)


if __name__ == "__main__":
    main()
