"""What ``edgecls run --collect`` costs the frame loop: median per-frame loop time (frame in
-> classified -> JSON line written -> next frame) without ``--collect``, with it when nothing
is kept, and with it keeping frames (JPEG encode and write on the writer thread), side by
side in one run: short blocks of each setting alternate, so load from other processes hits
all of them alike. Also the perceptual hash's cost per frame and ``Collector.offer``'s cost
for a frame no strategy picks.

Model: the Coral ``mobilenet_v1_0.25_128_quant.tflite`` (LiteRT, INT8, the smallest: the
collector's share is largest with it). Frames: 640x480 Imagenette images the model is sure
of (top-1 >= 0.6, margin >= 0.3), each held for 15 frames with sensor noise, as a camera
watching a scene; so low confidence, small margin and flicker all run and keep nothing.

Usage: nice -n 5 .venv/bin/python benchmarks/collect_overhead.py [--rounds 12] [--frames 150]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edgecls.live.collect import Collector, CollectRules
from edgecls.live.collect_store import write_durable
from edgecls.live.collect_writer import JPEG_QUALITY
from edgecls.live.perceptual_hash import dhash
from edgecls.runtime.base import BackendOptions
from edgecls.runtime.classifier import Classifier
from edgecls.live.loop import LoopOptions, run_loop
from edgecls.live.sinks import JsonLinesSink
from edgecls.live.sources import Frame, FrameSource

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODEL = SHARED / "models" / "coral" / "mobilenet_v1_0.25_128_quant.tflite"
LABELS = SHARED / "models" / "coral" / "imagenet_labels.txt"
NOTHING_KEPT = CollectRules(below=0.5, margin=0.2, flicker=True)


class ListSource(FrameSource):
    """Frames from memory, so decoding costs nothing and every setting sees the same ones."""

    description = "frames in memory"

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images

    def __iter__(self) -> Iterator[Frame]:
        for index, image in enumerate(self.images):
            yield Frame(index, image, time.monotonic())


def confident_scenes(classifier: Classifier, scenes: int = 10, hold: int = 15) -> list[np.ndarray]:
    """``scenes`` Imagenette images the model is sure of, each held ``hold`` frames with noise."""
    rng = np.random.default_rng(0)
    picked = []
    for path in sorted((SHARED / "data" / "imagenette" / "val").glob("*/*.JPEG"))[::37]:
        image = cv2.resize(cv2.imread(str(path)), (640, 480))
        top = classifier.top(classifier.probabilities(image), 2)
        if top[0][1] >= 0.6 and top[0][1] - top[1][1] >= 0.3:
            picked.append(image)
        if len(picked) == scenes:
            break
    return [np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
            for image in picked for _ in range(hold)]


def loop_times(classifier: Classifier, frames: list[np.ndarray],
               collector: Collector | None) -> tuple[list[float], list[float], dict]:
    """Per-frame loop times (ms) of one run over ``frames``, the gaps between results: wall
    time, and CPU time of the loop's thread (what the loop itself spent, without the waits
    for a core that other processes on a busy machine cause); and the run summary."""
    stamps: list[tuple[float, float]] = []
    with open(os.devnull, "w") as devnull:
        summary = run_loop(classifier, ListSource(frames), [JsonLinesSink(stream=devnull)], LoopOptions(),
                           on_result=lambda _: stamps.append((time.perf_counter(), time.thread_time())),
                           collector=collector)
    wall = [(b[0] - a[0]) * 1000.0 for a, b in zip(stamps, stamps[1:])]
    cpu = [(b[1] - a[1]) * 1000.0 for a, b in zip(stamps, stamps[1:])]
    return wall, cpu, summary


def writer_costs(frames: list[np.ndarray], folder: Path) -> tuple[float, float, float]:
    """Median ms of the writer thread's JPEG encode and durable write of a frame, and KB a frame."""
    folder.mkdir(parents=True)
    encode_ms, write_ms, sizes = [], [], []
    for index, image in enumerate(frames[::5]):
        started = time.perf_counter()
        jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
        encoded = time.perf_counter()
        write_durable(folder / f"{index}.jpg", jpeg)
        encode_ms.append((encoded - started) * 1e3)
        write_ms.append((time.perf_counter() - encoded) * 1e3)
        sizes.append(len(jpeg) / 1e3)
    return statistics.median(encode_ms), statistics.median(write_ms), statistics.median(sizes)


def micro_costs(classifier: Classifier, frames: list[np.ndarray], folder: Path) -> tuple[float, float]:
    """Median dHash time of a 640x480 frame and ``offer`` time of a frame nothing picks (us)."""
    hash_us = []
    for image in frames[:300]:
        started = time.perf_counter()
        dhash(image)
        hash_us.append((time.perf_counter() - started) * 1e6)
    collector = Collector(folder, NOTHING_KEPT)
    probabilities = classifier.probabilities(frames[0])
    top = classifier.top(probabilities, 5)
    result = {"frame": 0, "label": top[0][0], "score": top[0][1], "topk": [list(t) for t in top]}
    offer_us = []
    for index in range(2000):
        frame = Frame(index, frames[0], 0.0)
        started = time.perf_counter()
        collector.offer(frame, probabilities, result)
        offer_us.append((time.perf_counter() - started) * 1e6)
    collector.close()
    return statistics.median(hash_us), statistics.median(offer_us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep-fraction", type=float, default=0.2, help="--collect-random of the 'kept' setting")
    args = parser.parse_args()
    if not MODEL.is_file():
        raise SystemExit(f"{MODEL} is absent: this benchmark needs the shared Coral models")
    classifier = Classifier(MODEL, labels=LABELS, options=BackendOptions(threads=args.threads))
    frames = confident_scenes(classifier)
    settings = {"without --collect": None, "--collect, nothing kept": NOTHING_KEPT,
                f"--collect-random {args.keep_fraction:g} (kept)": CollectRules(random=args.keep_fraction)}
    wall: dict[str, list[float]] = {name: [] for name in settings}
    cpu: dict[str, list[float]] = {name: [] for name in settings}
    collected: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        loop_times(classifier, frames, None)  # warm-up
        for round_index in range(args.rounds):
            for number, (name, rules) in enumerate(settings.items()):
                collector = Collector(Path(tmp) / f"{round_index}-{number}", rules, model=MODEL,
                                      seed=round_index) if rules else None
                block_wall, block_cpu, summary = loop_times(classifier, frames, collector)
                wall[name] += block_wall
                cpu[name] += block_cpu
                if collector is not None:
                    _add_counts(collected.setdefault(name, {}), summary["collect"])
        hash_us, offer_us = micro_costs(classifier, frames, Path(tmp) / "micro")
        encode_ms, write_ms, jpeg_kb = writer_costs(frames, Path(tmp) / "writes")
    print(f"model {MODEL.name}, LiteRT, {args.threads} thread(s), 640x480 frames, "
          f"{args.rounds} rounds x {len(frames)} frames per setting, settings alternating")
    _report(wall, cpu, collected)
    print(f"  dHash of a 640x480 frame: median {hash_us:.0f} us; "
          f"offer() of a frame no strategy picks: median {offer_us:.1f} us")
    print(f"  writer thread per kept frame: JPEG encode {encode_ms:.2f} ms, write + fsync + rename "
          f"{write_ms:.2f} ms (median; {jpeg_kb:.0f} KB a frame)")


def _add_counts(total: dict, collected: dict) -> None:
    total["kept"] = total.get("kept", 0) + collected["kept"]
    for reason, count in collected["skipped"].items():
        total[reason] = total.get(reason, 0) + count


def _report(wall: dict[str, list[float]], cpu: dict[str, list[float]], collected: dict[str, dict]) -> None:
    base_wall, base_cpu = statistics.median(wall["without --collect"]), statistics.median(cpu["without --collect"])
    for name in wall:
        median_wall, median_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
        counts = ", ".join(f"{k} {v}" for k, v in collected.get(name, {}).items())
        print(f"  {name:28s} median wall {median_wall:6.3f} ms/frame ({median_wall / base_wall - 1:+.1%}), "
              f"loop-thread CPU {median_cpu:6.3f} ms ({median_cpu / base_cpu - 1:+.1%})"
              + (f"  [{counts}]" if counts else ""))


if __name__ == "__main__":
    main()
