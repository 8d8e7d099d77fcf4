"""Does the review page stay quick with a few thousand frames? An inbox of N 640x480 JPEGs
with sidecars (as `edgecls collect` writes them), a dataset of three classes, then:

- opening the session (listing the inbox, reading every sidecar, ordering);
- ``/api/state`` (every frame's record, as the page loads it): time and size;
- in headless chromium (Playwright): page load until ready, and per key press the time
  until the next frame is shown and decoded (label keys, every 10th an undo), median and p95.

Usage: nice -n 5 .venv/bin/python benchmarks/review_scale.py [--frames 3000] [--presses 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.review import call  # noqa: E402

from edgecls.review.server import ReviewServer  # noqa: E402
from edgecls.review.session import ReviewSession  # noqa: E402
from edgecls.review.target import content_file_name  # noqa: E402

LABELS = ["cat", "dog", "fox"]


def write_inbox(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC)
    for i in range(count):
        image = base.copy()
        cv2.putText(image, str(i), (40, 240), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255), 6)
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        name = content_file_name(data, ".jpg")
        (folder / name).write_bytes(data)
        scores = sorted(rng.dirichlet([1, 1, 1]), reverse=True)
        topk = [[LABELS[j], round(float(s), 4)] for j, s in zip(rng.permutation(3), scores)]
        sidecar = {"topk": topk, "time": "2026-12-07T03:00:00Z", "source": "camera 0", "why": "low confidence",
                   "model": {"file": "m.tflite", "sha256": "0" * 64}, "collected": {"host": "pi@cam1"}}
        (folder / name).with_suffix(".json").write_text(json.dumps(sidecar))


def browser_figures(server: ReviewServer, presses: int) -> tuple[float, list[float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(server.url)
        page.wait_for_selector("body[data-ready='1']")
        load_s = time.perf_counter() - started
        latencies = []
        for i in range(presses):
            before = page.get_attribute("#frame", "data-name")
            started = time.perf_counter()
            page.keyboard.press("Backspace" if i % 10 == 9 else str(1 + i % 3))
            page.wait_for_selector(f"#frame[data-name]:not([data-name='{before}'])")
            page.locator("#frame").evaluate("img => img.decode()")
            latencies.append(time.perf_counter() - started)
        browser.close()
    return load_s, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--presses", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_inbox(root / "inbox", args.frames)
        print(f"wrote {args.frames} frames in {time.perf_counter() - started:.1f} s")
        for label in LABELS:
            (root / "data" / label).mkdir(parents=True)
            shutil.copy(next((root / "inbox").glob("*.jpg")), root / "data" / label / "seed.jpg")
        started = time.perf_counter()
        session = ReviewSession(root / "inbox", root / "data", "bench")
        print(f"session open (list, read sidecars, order): {time.perf_counter() - started:.3f} s")
        server = ReviewServer(session).start()
        started = time.perf_counter()
        status, state = call(server, "GET", "/api/state")
        size = len(json.dumps(state))
        print(f"/api/state: {time.perf_counter() - started:.3f} s, {size / 1e6:.2f} MB, {len(state['frames'])} frames")
        load_s, latencies = browser_figures(server, args.presses)
        latencies.sort()
        print(f"page load until ready: {load_s:.2f} s")
        print(f"key press -> next frame shown and decoded: median {statistics.median(latencies) * 1e3:.0f} ms, "
              f"p95 {latencies[int(0.95 * (len(latencies) - 1))] * 1e3:.0f} ms over {len(latencies)} presses")
        server.close()
        session.close()


if __name__ == "__main__":
    main()
