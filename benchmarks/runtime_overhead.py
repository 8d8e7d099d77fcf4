"""Runtime overhead: end-to-end per frame (640x480 BGR -> top-5 through ``Classifier``)
vs the raw backend invoke alone, same model and threads, side by side, per backend.
Also MediaPipe's ``ImageClassifier`` on the same model and frames (when mediapipe is
installed), ``import edgecls.runtime`` time and the peak RSS of a headless run.

Models: the Coral ``mobilenet_v2_1.0_224_quant.tflite`` (LiteRT, INT8, foreign: no
metadata) and a float MobileNetV2 224 (random weights; speed does not depend on them)
converted once to TFLite, ONNX and OpenVINO IR with edgecls metadata embedded, as
``edgecls export`` writes them, in a TensorFlow subprocess, and cached.

Usage: nice -n 5 .venv/bin/python benchmarks/runtime_overhead.py [--threads 2] [--iters 60]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORAL = SHARED / "models" / "coral" / "mobilenet_v2_1.0_224_quant.tflite"
CACHE = Path(tempfile.gettempdir()) / "edgecls_bench_models"

_PREPARE = r"""
import sys, numpy as np, tensorflow as tf, keras, openvino as ov, tf2onnx
from pathlib import Path
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
spec = [tf.TensorSpec([1, 224, 224, 3], tf.float32, name="input")]
fn = tf.function(lambda x: model(x, training=False), input_signature=spec)
tflite = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model).convert()
from edgecls.runtime.metadata import ModelMetadata
from edgecls.runtime.tflite_metadata import embed_tflite_metadata
meta = ModelMetadata(labels=[f"class_{i}" for i in range(1000)], input_size=(224, 224), precision="fp32")
(out / "mobilenet_v2_fp32.tflite").write_bytes(embed_tflite_metadata(tflite, meta))
proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
import onnx
onnx.helper.set_model_props(proto, {"edgecls": meta.to_json()})
onnx.save(proto, str(out / "mobilenet_v2_fp32.onnx"))
ir = ov.convert_model(str(out / "mobilenet_v2_fp32.onnx"))
ir.set_rt_info(meta.to_json(), ["edgecls"])
ov.save_model(ir, str(out / "mobilenet_v2_fp32.xml"), compress_to_fp16=False)
"""


def prepare_models() -> dict[str, Path]:
    """Float MobileNetV2 in three formats (built once, cached), plus the Coral INT8 model."""
    names = {"tflite": "mobilenet_v2_fp32.tflite", "onnx": "mobilenet_v2_fp32.onnx",
             "openvino": "mobilenet_v2_fp32.xml"}
    if not all((CACHE / n).is_file() for n in names.values()):
        print(f"building float MobileNetV2 models in {CACHE} (TensorFlow subprocess) ...", flush=True)
        subprocess.run([sys.executable, "-c", _PREPARE, str(CACHE)], check=True, capture_output=True)
    models = {f"{k} fp32": CACHE / v for k, v in names.items()}
    if CORAL.is_file():
        models = {"tflite int8 (Coral)": CORAL, **models}
    return models


def frames(count: int = 8) -> list[np.ndarray]:
    """640x480 BGR frames: Imagenette images scaled up when available, else noise."""
    paths = sorted((SHARED / "data" / "imagenette" / "val").glob("*/*.JPEG"))[::400][:count]
    if paths:
        return [cv2.resize(cv2.imread(str(p)), (640, 480)) for p in paths]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(count)]


def paired(first, second, iters: int) -> tuple[float, float, float]:
    """Times two callables alternately, call by call, so load from other processes hits
    both alike. Returns median ms of each and the median of the per-pair ratios."""
    for _ in range(5):
        first(), second()
    ms_first, ms_second = [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        first()
        t1 = time.perf_counter()
        second()
        t2 = time.perf_counter()
        ms_first.append(1000 * (t1 - t0))
        ms_second.append(1000 * (t2 - t1))
    ratio = float(np.median(np.array(ms_second) / np.array(ms_first)))
    return float(np.median(ms_first)), float(np.median(ms_second)), ratio


def overhead_row(name: str, path: Path, images: list[np.ndarray], threads: int, iters: int) -> tuple:
    from edgecls.runtime import BackendOptions, Classifier

    clf = Classifier(path, options=BackendOptions(threads=threads))
    native = np.zeros([1, *clf.input_size, 3], dtype=clf.backend.input_info.dtype)
    if clf.backend.input_info.layout == "NCHW":
        native = np.ascontiguousarray(native.transpose(0, 3, 1, 2))
    state = {"i": 0}

    def end_to_end() -> None:
        state["i"] += 1
        clf.classify(images[state["i"] % len(images)], top_k=5)

    raw, e2e, ratio = paired(lambda: clf.backend.invoke(native), end_to_end, iters)
    return name, clf.backend.name, raw, e2e, ratio, clf.backend.settings


def mediapipe_classifier(path: Path, threads: int):
    """A MediaPipe ImageClassifier (top-5) as a callable on BGR frames, or why there is none."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        return f"skipped: mediapipe not installed ({exc})"
    try:
        options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)), max_results=5)
        classifier = vision.ImageClassifier.create_from_options(options)
    except Exception as exc:  # noqa: BLE001 - report any MediaPipe failure and go on
        return f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"

    def classify(frame: np.ndarray) -> None:  # MediaPipe wants RGB; cameras give BGR
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))

    classify.close = classifier.close  # type: ignore[attr-defined]
    classify.version = mp.__version__  # type: ignore[attr-defined]
    return classify


def compare_with_mediapipe(images: list[np.ndarray], threads: int, iters: int) -> str:
    """edgecls Classifier vs MediaPipe ImageClassifier on the Coral model, interleaved."""
    from edgecls.runtime import BackendOptions, Classifier

    theirs = mediapipe_classifier(CORAL, threads)
    if isinstance(theirs, str):
        return f"MediaPipe ImageClassifier: {theirs}"
    ours = Classifier(CORAL, options=BackendOptions(threads=threads))
    state = {"i": 0}

    def frame() -> np.ndarray:
        state["i"] += 1
        return images[state["i"] % len(images)]

    a, b, ratio = paired(lambda: ours.classify(frame(), top_k=5), lambda: theirs(frame()), iters)
    theirs.close()
    return (f"Coral INT8, 640x480 BGR -> top-5: edgecls Classifier {a:.2f} ms/frame ({threads} threads), "
            f"MediaPipe {theirs.version} ImageClassifier {b:.2f} ms/frame (its default threads, BGR->RGB included); "
            f"edgecls is {ratio:.2f}x faster (median of paired ratios)")


def import_time() -> float:
    """Best of 3 fresh interpreters: seconds to ``import edgecls.runtime``."""
    code = "import time; t = time.perf_counter(); import edgecls.runtime; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    return min(runs)


def headless_peak_rss(model: Path, threads: int) -> tuple[float, str]:
    """Peak RSS (MB) of `edgecls run --headless` on 100 generated 640x480 frames."""
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "frames.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
        for image in frames(8) * 13:
            writer.write(image)
        writer.release()
        cmd = [sys.executable, "-m", "edgecls", "run", str(model), "--source", str(video), "--headless",
               "--threads", str(threads), "--max-frames", "100", "--jsonl", str(Path(tmp) / "out.jsonl")]
        # A fresh parent whose only child is the run, so RUSAGE_CHILDREN is that run's peak.
        wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, "
                   "text=True, check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                   "print(r.stderr)")
        result = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, check=True)
    peak_kb = int(result.stdout.splitlines()[0])
    summary = [line for line in result.stdout.splitlines() if " frames" in line][0]
    return peak_kb / 1024, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args()
    models = prepare_models()
    first = next(iter(models.values()))
    rss_mb, summary = headless_peak_rss(first, args.threads)
    images = frames()
    print(f"threads={args.threads}, {args.iters} calls per measurement, 640x480 BGR frames -> top-5")
    print("ratio = median over paired calls of end-to-end / raw invoke (goal <= 1.10)")
    print(f"{'model':22s} {'backend':12s} {'raw invoke ms':>13s} {'end-to-end ms':>13s} {'ratio':>6s}  settings")
    for name, path in models.items():
        label, backend, raw, e2e, ratio, settings = overhead_row(name, path, images, args.threads, args.iters)
        print(f"{label:22s} {backend:12s} {raw:13.2f} {e2e:13.2f} {ratio:6.3f}  {settings}")
    if CORAL.is_file():
        print(compare_with_mediapipe(images, args.threads, args.iters))
    print(f"import edgecls.runtime: {1000 * import_time():.0f} ms (best of 3 fresh interpreters)")
    print(f"headless run peak RSS: {rss_mb:.0f} MB ({first.name}; {summary.strip()})")


if __name__ == "__main__":
    main()
