"""Repeatability of `edgecls bench`: the same bench run several times, p50 spread printed.

This machine is shared and noisy, so a single p50 says little on its own. This script
runs the same bench (same model, same thread counts, same warm-up and runs) REPEATS
times in a row and prints, per thread count, the p50 of every repeat, the spread of p50
across repeats, and the in-run spread that each bench itself reports (the p50 of five
consecutive blocks of runs), so the two can be compared.

    nice -n 5 .venv/bin/python benchmarks/bench_repeatability.py \
        [--model ../shared/models/coral/mobilenet_v2_1.0_224_quant.tflite] [--repeats 3] \
        [--runs 200] [--warmup 20] [--threads 1,2] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from edgecls.atomic import write_text_atomic
from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.bench.schema import dump_report

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "shared/models/coral/mobilenet_v2_1.0_224_quant.tflite"


def main() -> int:
    args = _parse_args()
    if not args.model.is_file():
        print(f"model {args.model} not found (pass --model)", file=sys.stderr)
        return 2
    threads = [int(t) for t in args.threads.split(",")]
    options = BenchOptions(threads=threads, runs=args.runs, warmup=args.warmup)
    p50s: dict[int, list[float]] = {t: [] for t in threads}
    print(f"model {args.model.name}: {args.repeats} repeats x threads {threads}, "
          f"{args.warmup} warm-up + {args.runs} timed runs each, fresh process per measurement\n")
    print(f"{'repeat':>6} {'threads':>7} {'p50 ms':>8} {'mean ms':>8} {'std ms':>7} "
          f"{'p99 ms':>8} {'in-run p50 spread':>18} {'load avg':>8}")
    for repeat in range(1, args.repeats + 1):
        report = run_bench([args.model], options)
        if args.out:
            write_text_atomic(args.out / f"repeat_{repeat}.json", dump_report(report))
        for record in report["records"]:
            if record["status"] != "passed":
                print(f"{repeat:>6} {record['threads']:>7} failed: {record['reason']}")
                continue
            lat = record["latency"]
            p50s[record["threads"]].append(lat["p50_ms"])
            print(f"{repeat:>6} {record['threads']:>7} {lat['p50_ms']:8.3f} {lat['mean_ms']:8.3f} "
                  f"{lat['std_ms']:7.3f} {lat['p99_ms']:8.3f} {lat['block_p50_spread_pct']:17.1f}% "
                  f"{report['machine']['load_avg_1m']:8.2f}")
    print("\np50 across repeats:")
    for count, values in p50s.items():
        if len(values) < 2:
            continue
        median = statistics.median(values)
        spread = 100.0 * (max(values) - min(values)) / median
        print(f"  {count} thread(s): min {min(values):.3f}  median {median:.3f}  max {max(values):.3f} ms"
              f"  -> spread {spread:.1f}% of the median")
    if len(threads) > 1 and all(len(p50s[t]) == args.repeats for t in threads):
        base = threads[0]
        for count in threads[1:]:
            ratios = [a / b for a, b in zip(p50s[base], p50s[count])]
            print(f"  speed-up {count} vs {base} thread(s) per repeat: "
                  + ", ".join(f"{r:.2f}x" for r in ratios))
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", type=Path, default=None, help="also write each repeat's JSON here")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
