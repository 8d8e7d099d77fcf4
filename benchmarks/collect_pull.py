"""How fast `edgecls collect --host` pulls: N 640x480 frames (JPEG + sidecar, written by the
real collector) from a real sshd on 127.0.0.1 (tests/sshd.py) into an empty inbox, then
removed there. Prints wall time, frames and MB per second, and a second pull's time (empty).

Usage: nice -n 5 .venv/bin/python benchmarks/collect_pull.py [--frames 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.sshd import SshLab  # noqa: E402

from edgecls.live.collect_store import CollectStore  # noqa: E402
from edgecls.remote.collect import CollectJob, collect_from_hosts  # noqa: E402
from edgecls.remote.host import parse_host  # noqa: E402
from edgecls.remote.inbox import Inbox  # noqa: E402
from edgecls.remote.ssh import SshOptions  # noqa: E402


def fill_device(folder: Path, count: int) -> int:
    import cv2

    store, rng = CollectStore(folder), np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
    for i in range(count):
        image = base.copy()
        cv2.putText(image, str(i), (40, 240), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255), 6)
        jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        stem = f"20261207T030000.{i:06d}Z-f{i:07d}"
        store.save(stem, jpeg, b'{"topk": [["cat", 0.4], ["dog", 0.3]]}\n')
    return store.used_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lab = SshLab(Path(tmp) / "ssh")
        try:
            server = lab.start("cam")
            size = fill_device(server.home / "collect", args.frames)
            job = CollectJob([parse_host(server.spec)], Inbox(Path(tmp) / "inbox"),
                             ssh=SshOptions(config_file=lab.config))
            for attempt in ("first pull", "second pull (nothing left)"):
                started = time.perf_counter()
                [outcome] = collect_from_hosts(job)
                seconds = time.perf_counter() - started
                assert outcome.passed, outcome.reason
                print(f"{attempt}: {outcome.value.describe(False)} in {seconds:.2f} s"
                      + (f" ({args.frames / seconds:.0f} frames/s, {size / 1e6 / seconds:.1f} MB/s of "
                         f"{size / 1e6:.0f} MB)" if attempt == "first pull" else ""))
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
