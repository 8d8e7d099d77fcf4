"""`edgecls bench --host`: parallel hosts vs one after the other, and the remote path's overhead.

Starts two real OpenSSH servers on 127.0.0.1 (as tests/test_remote.py does; both "devices"
are this machine, running this checkout with this Python), makes three tiny artifacts
(ONNX fp32, ONNX INT8, OpenVINO fp32) and a labelled image folder, then, REPEATS times,
side by side in one run:

- local: ``run_bench`` on this machine (what `edgecls bench` does);
- one host: the same bench through ssh on one device (connect, check the environment,
  copy artifacts + the image sample, bench there, fetch the JSON, clean up);
- sequential: that on host A, then on host B;
- parallel: hosts A and B at once (what `edgecls bench --host A --host B` does).

It prints the median of each and the ratios parallel/sequential and one-host/local. Both
"devices" share this machine's cores, so parallel here is a lower bound on the gain with
real, separate devices (where the benches themselves do not compete for CPU).

    nice .venv/bin/python benchmarks/remote_bench.py [--repeats 3] [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.images import write_color_folder
from helpers.sshd import SshLab, missing_tools
from helpers.tiny_models import TinyNet, make_onnx, make_openvino, tiny_metadata

from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.remote.bench import RemoteBenchJob, bench_on_hosts
from edgecls.remote.device import PrepareOptions
from edgecls.remote.host import parse_host
from edgecls.remote.ssh import SshOptions


def main() -> int:
    args = _parse_args()
    reason = missing_tools()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="edgecls-remote-bench-") as tmp:
        root = Path(tmp)
        lab = SshLab(root / "ssh")
        try:
            hosts = [parse_host(lab.start(name).spec) for name in ("a", "b")]
            models, colors = _artifacts(root)
            options = BenchOptions(data=colors, runs=args.runs, warmup=5)
            times = _measure(models, options, hosts, lab, args.repeats)
        finally:
            lab.stop()
    _print(times, args)
    return 0


def _artifacts(root: Path) -> tuple[list[Path], Path]:
    net = TinyNet()
    models = [make_onnx(root / "tiny_fp32.onnx", net, tiny_metadata(net)),
              make_onnx(root / "tiny_int8.onnx", net, tiny_metadata(net, precision="int8"), quantized=True),
              make_openvino(root / "tiny_fp32.xml", net, tiny_metadata(net))]
    return models, write_color_folder(root / "colors", per_class=10)


def _measure(models: list[Path], options: BenchOptions, hosts: list, lab: SshLab,
             repeats: int) -> dict[str, list[float]]:
    def remote(on: list) -> float:
        job = RemoteBenchJob(models, options, on, SshOptions(config_file=lab.config),
                             PrepareOptions(python=sys.executable))
        started = time.perf_counter()
        report = bench_on_hosts(job)
        elapsed = time.perf_counter() - started
        failed = [h for h in report["hosts"] if h["status"] != "passed"]
        if failed or any(r["status"] != "passed" for r in report["records"]):
            raise SystemExit(f"a remote bench did not pass: {failed or report['records']}")
        return elapsed

    def local() -> float:
        started = time.perf_counter()
        run_bench(models, options)
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"local": [], "one host": [], "sequential": [], "parallel": []}
    for repeat in range(1, repeats + 1):
        times["local"].append(local())
        times["one host"].append(remote(hosts[:1]))
        times["sequential"].append(remote(hosts[:1]) + remote(hosts[1:]))
        times["parallel"].append(remote(hosts))
        print(f"repeat {repeat}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    return times


def _print(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n3 artifacts (ONNX fp32, ONNX INT8, OpenVINO fp32), 30 images, {args.runs} runs each; "
          f"median of {args.repeats}")
    for name, value in median.items():
        print(f"  {name:<11} {value:7.1f} s")
    print(f"parallel / sequential (2 hosts):   {median['parallel'] / median['sequential']:.2f}")
    print(f"one host over ssh / local bench:   {median['one host'] / median['local']:.2f} "
          f"(+{median['one host'] - median['local']:.1f} s)")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per model")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
