"""Measures one model in the current process through the edgecls runtime.

What is timed is what ``edgecls run`` does per frame: ``Classifier.probabilities`` on
one BGR frame (input conversion, inference, softmax), with a frame already at the
model's input size so that the resize, which depends on the camera, is left out.

``runner`` calls this in a fresh subprocess per model (``python -m edgecls.bench.worker``)
so that peak memory belongs to one model. Order matters: memory is read right after
the timed runs, before any dataset image is decoded, so it covers loading and running
the model and not the images scored afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecls.bench import accuracy, latency, memory
from edgecls.bench.dataset import select_held_out
from edgecls.bench.export_float import float_on_same_images
from edgecls.errors import DataError, EdgeclsError
from edgecls.metrics import top_k_indices
from edgecls.runtime import BackendOptions, Classifier
from edgecls.runtime.metadata import split_rule
from edgecls.runtime.preprocess import read_image_bgr


@dataclass
class MeasureSpec:
    """What to measure for one model (JSON-serializable, passed to the worker)."""

    model: str
    labels_file: str | None = None
    threads: int | None = None
    device: str | None = None
    providers: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    warmup: int = 10
    runs: int | None = 100
    seconds: float | None = None
    measure_latency: bool = True
    data_labels: list[str] | None = None
    data_items: list[tuple[str, int]] = field(default_factory=list)
    verify: bool = True
    data_selection: str = "given"  # "held_out": keep what the model's run did not train on
    data_root: str | None = None


class StageError(Exception):
    """A failure in one stage of the measurement (load, run, accuracy)."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        detail = str(cause) if isinstance(cause, EdgeclsError) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"{stage} failed: {detail}")
        self.stage = stage


def measure(spec: MeasureSpec) -> dict[str, Any]:
    """Loads, times and scores one model; returns the worker result (see ``runner``).

    Raises:
        StageError: loading, running or scoring the model failed.
    """
    baseline_rss = memory.current_rss_mb()
    start = time.perf_counter()
    classifier = _stage("load", _load, spec)
    load_ms = (time.perf_counter() - start) * 1000.0
    frame = _stage("reading a sample frame", _sample_frame, classifier, spec)
    start = time.perf_counter()
    _stage("first inference", classifier.probabilities, frame)
    first_ms = (time.perf_counter() - start) * 1000.0
    result: dict[str, Any] = {
        "model_info": describe_classifier(classifier, spec),
        "load_ms": round(load_ms, 3),
        "first_inference_ms": round(first_ms, 3),
        "latency": None,
    }
    if spec.measure_latency:
        times = _stage("timed runs", latency.time_calls,
                       lambda: classifier.probabilities(frame), spec.warmup, spec.runs, spec.seconds)
        result["latency"] = {**latency.summarize(times), "warmup": spec.warmup}
    peak = memory.peak_rss_mb()
    result["memory"] = {
        "baseline_rss_mb": baseline_rss,
        "peak_rss_mb": peak,
        "model_rss_mb": round(peak - baseline_rss, 2) if peak is not None and baseline_rss else None,
        "method": "fresh subprocess per model; peak = getrusage ru_maxrss after the timed runs",
    }
    result["backend_settings"] = _jsonable(getattr(classifier.backend, "settings", {}))
    if spec.data_items:
        result.update(_stage("accuracy", _score, classifier, spec))
    return result


def describe_classifier(classifier: Any, spec: MeasureSpec) -> dict[str, Any]:
    """Format, precision, labels, input and backend of a loaded ``Classifier``."""
    backend = classifier.backend
    meta = classifier.metadata
    info = backend.input_info
    precision = meta.precision
    if precision is None and info.dtype in ("int8", "uint8"):
        precision = "int8"
    return {
        "model_name": meta.model_name,
        "run": (meta.extra or {}).get("run"),
        "precision": precision,
        "labels": model_labels(classifier, spec),
        "input": {"shape": [int(d) for d in info.shape], "dtype": str(info.dtype),
                  "quantization": list(info.quantization) if info.quantization else None,
                  "layout": info.layout},
        "backend": {"name": backend.name, "version": str(backend.version())},
        "metadata_embedded": not classifier.is_foreign,
    }


def model_labels(classifier: Any, spec: MeasureSpec) -> list[str] | None:
    """The class names of the model's outputs; None for a foreign model given no labels."""
    if classifier.is_foreign and not spec.labels_file and not classifier.metadata.labels:
        return None
    return list(classifier.labels)


def _load(spec: MeasureSpec) -> Any:
    options = BackendOptions(threads=spec.threads, device=spec.device, providers=spec.providers,
                             extra=spec.extra)
    return Classifier(spec.model, labels=spec.labels_file, options=options, verify=spec.verify)


def _sample_frame(classifier: Any, spec: MeasureSpec) -> np.ndarray:
    """One BGR frame already at the model's input size (so no resize is timed): the
    first data image if any, else fixed pseudo-random pixels."""
    import cv2

    height, width = classifier.input_size
    if spec.data_items:
        return cv2.resize(read_image_bgr(spec.data_items[0][0]), (width, height))
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _score(classifier: Any, spec: MeasureSpec) -> dict[str, Any]:
    """Top-k of every data image; accuracy metrics and the top-1 labels for agreement."""
    labels = model_labels(classifier, spec)
    num_outputs = len(classifier.labels)
    class_outputs = accuracy.class_output_indices(spec.data_labels or [], labels, num_outputs)
    items, selection = _selected_items(classifier, spec)
    tops, targets, scored, skipped = [], [], [], 0
    for path, target in items:
        try:
            frame = read_image_bgr(path)
        except DataError:
            skipped += 1
            continue
        tops.append(top_k_indices(classifier.probabilities(frame)[None], accuracy.TOP_K)[0])
        targets.append(target)
        scored.append(path)
    if not tops:
        raise ValueError("none of the data images could be read")
    top_k = np.stack(tops)
    scores = accuracy.accuracy_metrics(top_k, np.asarray(targets), spec.data_labels or [], class_outputs,
                                       num_outputs)
    scores["images_skipped"] = skipped
    scores["selection"] = selection
    expected = class_outputs[np.asarray(targets)]
    scores["correct_bits"] = np.packbits(top_k[:, 0] == expected).tobytes().hex()
    float_scores = float_on_same_images(spec.model, list(classifier.labels), scored, expected)
    if float_scores is not None:
        scores["float"] = float_scores
    names = classifier.labels
    return {"accuracy": scores, "predictions": [names[int(i)] for i in top_k[:, 0]]}


def _selected_items(classifier: Any, spec: MeasureSpec) -> tuple[list, dict[str, Any]]:
    """The data images to score and why (``accuracy.selection`` in SCHEMA.md)."""
    if spec.data_selection != "held_out":
        return spec.data_items, {"mode": spec.data_selection, "held_out_known":
                                 spec.data_selection == "run_test_split",
                                 "images_given": len(spec.data_items),
                                 "images_used": len(spec.data_items)}
    rule = None if classifier.is_foreign else split_rule(classifier.metadata)
    items, selection = select_held_out(spec.data_items, rule, spec.data_root)
    if not items:
        raise DataError(f"none of the {len(spec.data_items)} images was held out from this "
                        "model's training run (all are in its training split)",
                        "score it on other images, or on its run directory")
    return items, selection


def _stage(name: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:  # reported per model as "failed", the others keep running
        raise StageError(name, exc) from exc


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
