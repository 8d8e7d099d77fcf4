"""Faithfulness and cost of the explanation methods on real images.

EfficientNet-Lite0 with its ImageNet weights (``edgecls.models.build``) explains
Imagenette val images (the predicted class over 1000). For each image it prints the
deletion AUC (lower is better) and insertion AUC (higher is better, Petsiuk et al. 2018)
of Grad-CAM, Grad-CAM++ and RISE on the float Keras model, of RISE on the INT8 TFLite
export of the same model (scored with the INT8 model), and of a random smooth heatmap
(7x7 noise upsampled, Grad-CAM's resolution) as the floor. Then the time per image of
RISE on the INT8 artifact with 1 and 2 threads, measured side by side on the same images.

Usage: nice .venv/bin/python benchmarks/explain_faithfulness.py [--images 20] [--masks 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgecls.explain.agnostic import explain_agnostic
from edgecls.explain.faithfulness import deletion_insertion
from edgecls.explain.gradcam import KerasModel, explain_gradcam
from edgecls.explain.model import ExplainedModel, RuntimeModel
from edgecls.explain.rise import RiseOptions
from edgecls.runtime.preprocess import read_image_bgr

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IMAGENETTE = SHARED / "data" / "imagenette"
LABELS = SHARED / "models" / "coral" / "imagenet_labels.txt"
METHODS = ("gradcam", "gradcam++", "rise (float)", "rise (INT8)", "random")


def pick_images(count: int, split: str, offset: int = 0) -> list[Path]:
    """``count`` images spread over the 10 classes, deterministic."""
    folders = sorted((IMAGENETTE / split).iterdir())
    per_class = [sorted(f.glob("*.JPEG"))[offset:] for f in folders]
    return [per_class[i % len(folders)][i // len(folders)] for i in range(count)]


def export_int8(keras_model: KerasModel, work: Path) -> Path:
    """The model exported to INT8 TFLite with edgecls' exporter (100 train images)."""
    from edgecls.export.base import ExportSource, QuantizationConfig, get_exporter
    from edgecls.export.metadata import base_metadata

    calibration = np.stack([keras_model.prepare(read_image_bgr(p)) for p in pick_images(100, "train")])
    saved = work / "saved_model"
    keras_model.model.export(str(saved), format="tf_saved_model", verbose=False)
    meta = base_metadata(keras_model.labels, keras_model.input_size, "efficientnet_lite0")
    source = ExportSource(model=keras_model.model, saved_model=saved, metadata=meta, work_dir=work)
    out = work / "lite0_int8.tflite"
    return get_exporter("tflite").export(source, QuantizationConfig.for_int8(calibration), out)


def score(model: ExplainedModel, image: np.ndarray, heatmap: np.ndarray, index: int) -> tuple[float, float]:
    result = deletion_insertion(model.predict, model.prepare(image), heatmap, index, model.baseline)
    return result.deletion, result.insertion


def faithfulness(float_model: KerasModel, int8: RuntimeModel, images: list[Path],
                 rise: RiseOptions) -> dict[str, list[tuple[float, float]]]:
    rng = np.random.default_rng(0)
    scores: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    for n, path in enumerate(images, start=1):
        image = read_image_bgr(path)
        index = int(np.argmax(float_model.predict(float_model.prepare(image)[None])[0]))
        for method in ("gradcam", "gradcam++"):
            [e] = explain_gradcam(float_model, image, [index], method)
            scores[method].append(score(float_model, image, e.heatmap, index))
        [e] = explain_agnostic(float_model, image, [index], "rise", rise)
        scores["rise (float)"].append(score(float_model, image, e.heatmap, index))
        [e] = explain_agnostic(int8, image, [index], "rise", rise)
        scores["rise (INT8)"].append(score(int8, image, e.heatmap, index))
        random_map = cv2.resize(rng.random((7, 7)).astype(np.float32), float_model.input_size[::-1])
        scores["random"].append(score(float_model, image, random_map, index))
        print(f"  {n}/{len(images)} {path.name}: " + ", ".join(
            f"{m} {scores[m][-1][0]:.3f}/{scores[m][-1][1]:.3f}" for m in METHODS), flush=True)
    return scores


def rise_seconds(path: Path, images: list[Path], rise: RiseOptions, threads: int) -> float:
    model = RuntimeModel(path, threads=threads)
    loaded = [read_image_bgr(p) for p in images]
    explain_agnostic(model, loaded[0], [0], "rise", RiseOptions(masks=rise.batch_size, batch_size=rise.batch_size))
    started = time.perf_counter()
    for image in loaded:
        index = int(np.argmax(model.predict(model.prepare(image)[None])[0]))
        explain_agnostic(model, image, [index], "rise", rise)
    return (time.perf_counter() - started) / len(loaded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20, help="Imagenette val images for the AUCs")
    parser.add_argument("--timing-images", type=int, default=4, help="images for the 1 vs 2 thread timing")
    parser.add_argument("--masks", type=int, default=500, help="RISE masks per image")
    args = parser.parse_args()
    if not IMAGENETTE.is_dir():
        raise SystemExit(f"needs the shared data at {IMAGENETTE}")
    from edgecls.models import build
    from edgecls.runtime.classifier import read_labels

    labels = read_labels(LABELS)[1:]  # the Coral file starts with "background"
    float_model = KerasModel(build("efficientnet_lite0", weights="imagenet"), Path("efficientnet_lite0"), labels)
    rise = RiseOptions(masks=args.masks, batch_size=25)
    with tempfile.TemporaryDirectory() as work:
        int8_path = export_int8(float_model, Path(work))
        timing_images = pick_images(args.timing_images, "val", offset=10)
        seconds = {t: rise_seconds(int8_path, timing_images, rise, t) for t in (1, 2)}
        print(f"RISE ({args.masks} masks) on the INT8 TFLite artifact, s per image over "
              f"{len(timing_images)} images: 1 thread {seconds[1]:.2f}, 2 threads {seconds[2]:.2f} "
              f"(ratio {seconds[1] / seconds[2]:.2f}x)", flush=True)
        int8 = RuntimeModel(int8_path, threads=2)
        print(f"EfficientNet-Lite0 ImageNet, {args.images} Imagenette val images, RISE {args.masks} masks; "
              "per image: deletion/insertion AUC")
        scores = faithfulness(float_model, int8, pick_images(args.images, "val"), rise)
    print("\nmethod           deletion AUC (lower better)   insertion AUC (higher better)")
    for method in METHODS:
        values = np.array(scores[method])
        print(f"{method:<16} {values[:, 0].mean():.4f} ± {values[:, 0].std():.4f}"
              f"               {values[:, 1].mean():.4f} ± {values[:, 1].std():.4f}")


if __name__ == "__main__":
    main()
