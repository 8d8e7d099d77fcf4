"""Bench several models: each one (and each thread count) in a fresh subprocess.

A fresh process per measurement keeps models from polluting each other's memory
figures and caches, and turns a crash of one backend into a ``failed`` record instead
of the end of the bench. The report is assembled here (schema in ``schema``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import edgecls
from edgecls.bench import accuracy as acc
from edgecls.bench.dataset import LabelledImages, load_labelled_images
from edgecls.bench.machine import describe_machine
from edgecls.bench.measure import MeasureSpec
from edgecls.config import option
from edgecls.bench.schema import (REPORT_KIND, SCHEMA_VERSION, STATUS_BELOW_FLOOR, STATUS_FAILED,
                                  STATUS_PASSED)
from edgecls.errors import EdgeclsError
from edgecls.formats import artifact_size, format_for_path


@dataclass
class BenchOptions:
    """Everything ``edgecls bench`` takes besides the model files; each field's ``help``
    is its option's help (``labels_file`` is ``--labels``, ``timeout_s`` ``--timeout``)."""

    data: Path | None = option(None, help=(
        "Labelled images: DIR/CLASS/*, a pre-split dataset (its test or val subset), or a run "
        "directory (its test split). Of a folder, each edgecls model scores only the files its "
        "training run held out (recomputed from the split rule it carries); a model without one "
        "scores all, with a WARNING."))
    reference: Path | None = option(None, help=(
        "Model to compare top-1 predictions with (e.g. the fp32 artifact of the same run); needs --data."))
    target: str | None = option(None, help=(
        "Target profile name recorded with the results (e.g. raspberry-pi-4); its "
        "threads/device/providers apply unless given."))
    threads: list[int | None] = option(default_factory=lambda: [None], help=(
        "Thread count(s), comma-separated, e.g. 1,2,4: one record per count. Default: the "
        "target's, else the backend's choice."))
    warmup: int = option(10, help="Untimed runs before timing.")
    runs: int | None = option(100, help="Timed runs per model (after the warm-up).")
    seconds: float | None = option(None, help="Time budget per model instead of --runs.")
    min_accuracy: float | None = option(None, help=(
        "Top-1 floor: below it a model's status is below_floor. Needs --data."))
    labels_file: Path | None = option(None, help="Labels file for models without embedded labels (one per line).")
    max_per_class: int | None = option(None, help="Score at most this many images per class.")
    device: str | None = option(None, help="OpenVINO device (CPU, GPU, NPU).")
    providers: list[str] | None = option(None, help="ONNX Runtime execution providers, comma-separated.")
    extra: dict[str, Any] = field(default_factory=dict)  # BackendOptions.extra
    target_profile: dict[str, Any] | None = None  # recorded in machine["target_profile"]
    timeout_s: float = option(1800.0, help="Seconds before one model's measurement is abandoned.")
    verify: bool = option(True, help=(
        "Check each model against the digest embedded at export (--no-verify measures a damaged file anyway)."))


Progress = Callable[[str], None]


def run_bench(models: list[Path], options: BenchOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Measures every model; returns a report object (see SCHEMA.md).

    Raises:
        EdgeclsError: invalid options or unusable data (a model that fails to load or
            run is not an error: it becomes a ``failed`` record).
    """
    check_options(models, options)
    say = progress or (lambda message: None)
    machine = describe_machine(options.target)
    machine["target_profile"] = options.target_profile
    images = load_labelled_images(options.data, options.max_per_class) if options.data else None
    reference = _measure_reference(options, images, say) if options.reference else None
    records = []
    for model in models:
        records.extend(_bench_model(Path(model), options, images, reference, say))
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": REPORT_KIND,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "edgecls_version": edgecls.__version__,
        "machine": machine,
        "settings": _settings(options, images),
        "records": records,
    }


def check_options(models: list[Path], options: BenchOptions) -> None:
    """Raises an EdgeclsError for options no machine could bench with (before any measurement)."""
    if not models:
        raise EdgeclsError("no model files given", "pass one or more .tflite, .onnx or .xml files")
    if options.min_accuracy is not None and options.data is None:
        raise EdgeclsError("--min-accuracy needs labelled data", "add --data DIR")
    if options.min_accuracy is not None and not 0.0 <= options.min_accuracy <= 1.0:
        raise EdgeclsError(f"--min-accuracy {options.min_accuracy} is not in [0, 1]",
                           "give a top-1 fraction such as 0.9")
    if options.reference is not None and options.data is None:
        raise EdgeclsError("--reference needs labelled data to compare on", "add --data DIR")
    if options.seconds is None and (options.runs is None or options.runs < 1):
        raise EdgeclsError("--runs must be at least 1", "or give a time budget with --seconds")
    if options.warmup < 0:
        raise EdgeclsError("--warmup cannot be negative")
    if any(t is not None and t < 1 for t in options.threads):
        raise EdgeclsError("thread counts must be at least 1", "e.g. --threads 1,2,4")


def _bench_model(model: Path, options: BenchOptions, images: LabelledImages | None,
                 reference: dict[str, Any] | None, say: Progress) -> list[dict[str, Any]]:
    """One record per thread count; accuracy is scored once (with the first thread count)."""
    records = []
    scored: dict[str, Any] | None = None
    for index, threads in enumerate(options.threads):
        say(f"{model.name}" + (f" ({threads} threads)" if threads else ""))
        spec = _spec(model, options, threads, images if index == 0 else None)
        result = _run_worker(spec, options.timeout_s) if model.exists() else _missing(model)
        if index == 0 and result.get("ok"):
            scored = {"accuracy": result.get("accuracy"), "predictions": result.get("predictions")}
        elif scored and result.get("ok"):
            result.update({k: v for k, v in scored.items() if v is not None})
            if result.get("accuracy"):
                result["accuracy"]["scored_with_threads"] = options.threads[0]
        records.append(_record(model, threads, options, result, reference))
    return records


def _measure_reference(options: BenchOptions, images: LabelledImages | None,
                       say: Progress) -> dict[str, Any]:
    say(f"reference {Path(options.reference).name}")  # type: ignore[arg-type]
    if not Path(options.reference).exists():  # type: ignore[arg-type]
        raise EdgeclsError(f"reference model {options.reference} does not exist")
    spec = _spec(Path(options.reference), options, options.threads[0], images)  # type: ignore[arg-type]
    spec.measure_latency = False
    result = _run_worker(spec, options.timeout_s)
    if not result.get("ok"):
        raise EdgeclsError(f"the reference model failed: {result.get('error')}",
                           "fix or drop --reference; it must run on this machine")
    return {"model": str(options.reference), "top1": result["accuracy"]["top1"],
            "per_class": result["accuracy"]["per_class"], "predictions": result["predictions"]}


def _spec(model: Path, options: BenchOptions, threads: int | None,
          images: LabelledImages | None) -> MeasureSpec:
    return MeasureSpec(
        model=str(model), labels_file=str(options.labels_file) if options.labels_file else None,
        threads=threads, device=options.device, providers=options.providers, extra=options.extra,
        warmup=options.warmup, runs=options.runs, seconds=options.seconds, verify=options.verify,
        data_labels=images.labels if images else None,
        data_items=[(str(p), int(i)) for p, i in images.items] if images else [],
        data_selection=_selection_mode(images),
        data_root=str(images.root) if images and images.root else None,
    )


def _selection_mode(images: LabelledImages | None) -> str:
    if images is None:
        return "given"
    return "held_out" if images.held_out_only else "run_test_split"


def _run_worker(spec: MeasureSpec, timeout_s: float) -> dict[str, Any]:
    """Runs ``edgecls.bench.worker`` on ``spec`` in a fresh interpreter; returns its result."""
    with tempfile.TemporaryDirectory(prefix="edgecls-bench-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(dataclasses.asdict(spec)), encoding="utf-8")
        command = [sys.executable, "-m", "edgecls.bench.worker", str(spec_path), str(result_path)]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout_s:.0f} s"}
        if result_path.is_file():
            return json.loads(result_path.read_text(encoding="utf-8"))
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "error": f"measurement process died (exit code {proc.returncode}): {tail[0]}"}


def _missing(model: Path) -> dict[str, Any]:
    return {"ok": False, "error": f"model file {model} does not exist"}


def _record(model: Path, threads: int | None, options: BenchOptions, result: dict[str, Any],
            reference: dict[str, Any] | None) -> dict[str, Any]:
    """One report record (keys documented in SCHEMA.md)."""
    info = result.get("model_info", {})
    record: dict[str, Any] = {
        "model": str(model),
        "file": model.name,
        "format": _format_name(model),
        "precision": info.get("precision"),
        "model_name": info.get("model_name"),
        "run": info.get("run"),
        "labels": info.get("labels"),
        "threads": threads,
        "target": options.target,
        "status": STATUS_PASSED,
        "reason": None,
        "size_bytes": artifact_size(model),
        "load_ms": result.get("load_ms"),
        "first_inference_ms": result.get("first_inference_ms"),
        "latency": result.get("latency"),
        "memory": result.get("memory"),
        "backend": {**info.get("backend", {}), "settings": result.get("backend_settings", {})} if info else None,
        "input": info.get("input"),
        "accuracy": result.get("accuracy"),
    }
    if not result.get("ok"):
        record.update(status=STATUS_FAILED, reason=result.get("error", "unknown error"))
        return record
    if reference and record["accuracy"] and result.get("predictions"):
        record["accuracy"]["reference"] = {
            "model": reference["model"], "top1": reference["top1"], "per_class": reference["per_class"],
            "agreement": acc.agreement(result["predictions"], reference["predictions"]),
        }
    floor = options.min_accuracy
    if floor is not None and record["accuracy"] and record["accuracy"]["top1"] < floor:
        record.update(status=STATUS_BELOW_FLOOR,
                      reason=f"top-1 {record['accuracy']['top1']:.4f} < floor {floor:.4f}")
    return record


def _format_name(model: Path) -> str:
    fmt = format_for_path(model)
    return fmt.name if fmt else (model.suffix.lstrip(".") or "unknown")


def _settings(options: BenchOptions, images: LabelledImages | None) -> dict[str, Any]:
    return {
        "warmup": options.warmup,
        "runs": options.runs if options.seconds is None else None,
        "seconds": options.seconds,
        "threads": options.threads,
        "data": images.source if images else None,
        "images": len(images.items) if images else 0,
        "reference": str(options.reference) if options.reference else None,
        "min_accuracy": options.min_accuracy,
        "memory_method": "fresh subprocess per model and thread count; peak RSS (ru_maxrss)",
        "latency_call": "Classifier.predict on one prepared frame (batch 1)",
    }
