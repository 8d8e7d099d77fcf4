"""What the static batch-1 default costs or saves: ONNX Runtime and OpenVINO, static
``[1, 224, 224, 3]`` vs dynamic ``[?, 224, 224, 3]`` exports of one model, timed side by
side in one run (interleaved rounds, so machine load hits both alike).

Per format it prints the p50 latency of one image (what a camera loop does) and the
time per image of ``Classifier.predict`` on a batch of 32 (what validation and accuracy
benches do: the static model runs it image by image, the dynamic one in one call).

    nice .venv/bin/python benchmarks/static_batch.py [--rounds 5] [--runs 50] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecls.export.base import ExportSource, QuantizationConfig, get_exporter
from edgecls.export.metadata import base_metadata
from edgecls.runtime import BackendOptions, Classifier


def _model(size: int):
    import keras

    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV3Small(input_shape=(size, size, 3), weights=None, classes=10)


def _export(work: Path, size: int) -> dict[tuple[str, str], Path]:
    model = _model(size)
    model.export(str(work / "saved_model"), verbose=False)
    meta = base_metadata([f"c{i}" for i in range(10)], (size, size), "mobilenet_v3_small")
    out = {}
    for batch in ("static", "dynamic"):
        source = ExportSource(model, work / "saved_model", meta, work / batch, dynamic_batch=batch == "dynamic")
        source.work_dir.mkdir()
        for fmt in ("onnx", "openvino"):
            exporter = get_exporter(fmt)
            quant = QuantizationConfig.for_float32()
            out[fmt, batch] = exporter.export(source, quant, source.work_dir / exporter.artifact_name("m", quant))
    return out


def _single_ms(classifier: Classifier, image: np.ndarray, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        classifier.predict(image)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _batch_ms_per_image(classifier: Classifier, batch: np.ndarray) -> float:
    start = time.perf_counter()
    classifier.predict(batch)
    return (time.perf_counter() - start) * 1000 / len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (32, args.size, args.size, 3)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        paths = _export(Path(tmp), args.size)
        options = BackendOptions(threads=args.threads)
        classifiers = {key: Classifier(path, options=options) for key, path in paths.items()}
        single = {key: [] for key in classifiers}
        batched = {key: [] for key in classifiers}
        for _ in range(args.rounds):
            for key, classifier in classifiers.items():
                single[key].append(_single_ms(classifier, batch[:1], args.runs))
                batched[key].append(_batch_ms_per_image(classifier, batch))
        for fmt in ("onnx", "openvino"):
            s_one, d_one = (statistics.median(single[fmt, b]) for b in ("static", "dynamic"))
            s_bat, d_bat = (statistics.median(batched[fmt, b]) for b in ("static", "dynamic"))
            print(f"{fmt:9s} 1 image p50: static {s_one:6.2f} ms, dynamic {d_one:6.2f} ms, "
                  f"static/dynamic {s_one / d_one:4.2f} | batch of 32 per image: static {s_bat:6.2f} ms, "
                  f"dynamic {d_bat:6.2f} ms, static/dynamic {s_bat / d_bat:4.2f}")


if __name__ == "__main__":
    main()
