"""`edgecls tune --host`: what asking the device for its runtime costs, beside one bench.

Starts a real OpenSSH server on 127.0.0.1 whose ``python3`` runs this checkout with this
Python (tests/helpers/sshd.py), makes a tiny INT8 ONNX model, then REPEATS times each: the
device query the latency meter makes once per process (prepare the environment as for a
bench, then the device's ``describe_machine()``), and one bench of the model over ssh as the
meter runs it (50 runs, 10 warm-up). Prints every time, the medians and the load average.

    nice .venv/bin/python benchmarks/tune_device_query.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.sshd import SshLab, missing_tools, start_python_device  # noqa: E402
from helpers.tiny_models import TinyNet, make_onnx, tiny_metadata  # noqa: E402

from edgecls.remote.host import parse_host  # noqa: E402
from edgecls.remote.machine import device_machine  # noqa: E402
from edgecls.tune import steps  # noqa: E402


def timed(action, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if missing_tools():
        sys.exit(f"cannot run: {missing_tools()}")
    with tempfile.TemporaryDirectory(prefix="tune-device-") as tmp:
        root = Path(tmp)
        (root / "site").mkdir()
        lab = SshLab(root / "ssh")
        try:
            device = start_python_device(lab, "pi", root / "site", sys.executable)
            os.environ["EDGECLS_SSH_CONFIG"] = str(lab.config)
            host = parse_host(device.spec)
            net = TinyNet()
            model = make_onnx(root / "tiny_int8.onnx", net, tiny_metadata(net, precision="int8"), quantized=True)
            query = timed(lambda: device_machine(host, {"onnx"}), args.repeats)
            bench = timed(lambda: steps.bench_on_host(model, host, None, None), args.repeats)
        finally:
            lab.stop()
    for name, seconds in (("device query", query), ("one bench over ssh", bench)):
        print(f"{name}: {', '.join(f'{s:.2f}' for s in seconds)} s; median {statistics.median(seconds):.2f} s")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
