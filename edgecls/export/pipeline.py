"""Export + validate + gate for one run: the library behind ``edgecls export``.

For every (format, precision): export to a scratch folder, run the artifact through the
edgecls runtime on the run's test split, compare with the float Keras model, and for an
INT8 artifact over budget try remedies (another calibration method, more calibration
images, sensitive layers kept in float) before publishing the best attempt atomically.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgecls.data.calibration import (CalibrationPreset, calibration_images, sample_items,
                                      split_calibration)
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.errors import ConfigError, DataError, EdgeclsError, ModelError
from edgecls.export import metadata as md
from edgecls.export.base import (IO_TYPES, PRECISIONS, Exporter, ExportSource, QuantizationConfig,
                                 Remedy, get_exporter, list_formats)
from edgecls.export.manifest import (ArtifactRecord, Manifest, RemedyRecord, artifact_files,
                                     describe_files)
from edgecls.export.validate import Validation, float_probabilities, validate_artifact
from edgecls.rundir import RunDir
from edgecls.runtime.base import BackendOptions
from edgecls.runtime.cpu import cpu_info

_VALIDATION_FOR_ACCURACY_CONTROL = 300
Progress = Callable[[str, float], None]  # (message, fraction of the work done)


@dataclass
class ExportConfig:
    """Options of one ``edgecls export`` call.

    Attributes:
        out: output folder for the artifacts and ``manifest.json``.
        formats: export formats (``tflite``, ``onnx``, ``openvino``).
        precisions: ``fp32``, ``fp16``, ``dynamic``, ``int8``.
        calibration: preset name, preset YAML or folder of images (None: default preset).
        max_drop: largest accepted accuracy drop, in percentage points.
        input_type: TFLite INT8 input/output dtype (``uint8``, ``int8``, ``float32``).
        remedies: try remedies when INT8 misses the budget.
        stem: artifact file name stem.
        options: runtime backend options used for validation.
        target: name of the device profile the formats/precisions came from.
    """

    out: Path
    formats: list[str] = field(default_factory=lambda: ["tflite", "onnx", "openvino"])
    precisions: list[str] = field(default_factory=lambda: ["int8"])
    calibration: str | None = None
    max_drop: float = 1.0
    input_type: str = "uint8"
    remedies: bool = True
    stem: str = "model"
    options: BackendOptions | None = None
    target: str | None = None


@dataclass
class _Context:
    """What every artifact of one export shares."""

    run: RunDir
    config: ExportConfig
    source: ExportSource
    split: Split | None
    test_images: np.ndarray
    test_labels: np.ndarray
    float_probs: np.ndarray
    calibration: np.ndarray | None = None
    preset: CalibrationPreset | None = None
    calibration_note: str | None = None


def check_request(config: ExportConfig) -> list[Exporter]:
    """Validates formats, precisions and options before any heavy work."""
    exporters = []
    for fmt in config.formats:
        if fmt not in list_formats():
            raise ConfigError(f"unknown export format {fmt!r}",
                              f"choose from: {', '.join(list_formats())}")
        exporters.append(get_exporter(fmt))
    for precision in config.precisions:
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}",
                              f"choose from: {', '.join(PRECISIONS)}")
        for exporter in exporters:
            exporter.check_precision(precision)
    if config.input_type not in IO_TYPES:
        raise ConfigError(f"unknown input type {config.input_type!r}",
                          f"choose one of: {', '.join(IO_TYPES)}")
    if config.max_drop < 0:
        raise ConfigError(f"--max-drop must be >= 0, got {config.max_drop}")
    if not config.formats or not config.precisions:
        raise ConfigError("nothing to export", "give at least one format and one precision")
    return exporters


def export_run(run_dir: Path, config: ExportConfig, progress: Progress | None = None) -> Manifest:
    """Exports, validates and gates every requested artifact of a trained run.

    Returns:
        The manifest (also written to ``config.out/manifest.json``). Artifacts over
        budget are kept but marked ``passed=False``; the caller decides the exit code.
    """
    say = progress or (lambda message, fraction: None)
    exporters = check_request(config)
    run = RunDir(Path(run_dir))
    model_path = run.require_model()
    config.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".edgecls-export-", dir=config.out) as work:
        say("loading the model and the test split", 0.0)
        context = _context(run, model_path, config, Path(work))
        manifest = _new_manifest(context)
        jobs = [(e, p) for e in exporters for p in config.precisions]
        for index, (exporter, precision) in enumerate(jobs):
            say(f"{exporter.name} {precision}", index / len(jobs))
            manifest.artifacts.append(_export_one(context, exporter, precision))
        say("writing manifest.json", 1.0)
        _guard_disk(lambda: manifest.save(config.out), config.out / "manifest.json")
    return manifest


def _context(run: RunDir, model_path: Path, config: ExportConfig, work: Path) -> _Context:
    model = load_float_model(model_path)
    size = input_size(model)
    labels = run.read_labels() if run.labels.is_file() else None
    split = Split.load(run.split) if run.split.is_file() else None
    if split is None or not split.items("test"):
        raise DataError(f"{run.root} has no test split to validate the artifacts on",
                        "export a run made by `edgecls train` (it writes split.json)")
    labels = labels or split.labels
    calibration = None, None, None
    if "int8" in config.precisions:  # first: a bad calibration folder fails fast
        calibration = calibration_images(config.calibration, split, size)
    images, test_labels = load_arrays(split.items("test"), size)  # uint8: 4x less memory
    meta = md.base_metadata(labels, size, model.name, extra={"run": run.root.name})
    saved_model = work / "saved_model"
    _export_saved_model(model, saved_model)
    source = ExportSource(model=model, saved_model=saved_model, metadata=meta, work_dir=work)
    context = _Context(run=run, config=config, source=source, split=split, test_images=images,
                       test_labels=test_labels, float_probs=float_probabilities(model, images))
    context.calibration, context.preset, context.calibration_note = calibration
    return context


def load_float_model(path: Path) -> Any:
    """The float Keras model of a run (a clear error when the file is not one)."""
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises many types for a broken file
        raise ModelError(f"cannot load the Keras model {path}: {str(exc).splitlines()[0][:200]}",
                         "re-run `edgecls train`, or pass the run directory it wrote") from None


def input_size(model: Any) -> tuple[int, int]:
    """(height, width) of a model with a static input size."""
    shape = model.input_shape
    if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] != 3:
        raise ModelError(f"the model's input shape {shape} is not (None, H, W, 3) with fixed H, W",
                         "export needs a fixed input size; rebuild the model with input_size")
    return int(shape[1]), int(shape[2])


def _export_saved_model(model: Any, path: Path) -> None:
    try:
        model.export(str(path), format="tf_saved_model", verbose=False)
    except Exception as exc:  # Keras/TF raise many types for untraceable layers
        raise ModelError(f"cannot export the Keras model to a SavedModel: "
                         f"{str(exc).splitlines()[0][:300]}",
                         "custom layers need get_config() and a traceable call()") from None


def _new_manifest(context: _Context) -> Manifest:
    meta = context.source.metadata
    float_acc = float(np.mean(context.float_probs.argmax(1) == context.test_labels))
    return Manifest(run=str(context.run.root), model=str(context.run.best_model),
                    labels=meta.labels, input_size=meta.input_size,
                    max_drop_pp=context.config.max_drop, test_images=len(context.test_labels),
                    float_accuracy=float_acc, calibration=context.calibration_note,
                    cpu=cpu_info().summary(), target=context.config.target)


def _quant_config(context: _Context, exporter: Exporter, precision: str) -> QuantizationConfig:
    if precision != "int8":
        return QuantizationConfig.for_precision(precision)
    assert context.preset is not None
    return QuantizationConfig.for_int8(
        context.calibration, method=context.preset.method(exporter.name),
        io_type=context.config.input_type, max_drop=context.config.max_drop / 100.0)


def _export_one(context: _Context, exporter: Exporter, precision: str) -> ArtifactRecord:
    quant = _quant_config(context, exporter, precision)
    final = context.config.out / exporter.artifact_name(context.config.stem, quant)
    started = time.perf_counter()
    path, result = _attempt(context, exporter, quant, "first")
    best = (path, result, quant)
    remedies: list[RemedyRecord] = []
    if precision == "int8" and context.config.remedies and not _passes(context, result):
        best = _try_remedies(context, exporter, best, remedies)
    path, result, quant = best
    _guard_disk(lambda: publish(path, final), final)
    return _record(context, exporter, final, quant, result, remedies,
                   time.perf_counter() - started)


def _attempt(context: _Context, exporter: Exporter, quant: QuantizationConfig,
             tag: str) -> tuple[Path, Validation]:
    folder = Path(tempfile.mkdtemp(prefix=f"{exporter.name}-{quant.precision}-{tag}-",
                                   dir=context.source.work_dir))
    path = folder / exporter.artifact_name(context.config.stem, quant)
    _guard_disk(lambda: exporter.export(context.source, quant, path), path)
    result = validate_artifact(path, context.test_images, context.test_labels,
                               context.float_probs, context.source.metadata.labels,
                               context.config.options)
    return path, result


def _passes(context: _Context, result: Validation) -> bool:
    return result.passed(context.config.max_drop)


def _try_remedies(context: _Context, exporter: Exporter, best: tuple, records: list[RemedyRecord]):
    tried = [best[2]]
    for number, remedy in enumerate(_remedies(context, exporter, best[2], tried), start=1):
        record = RemedyRecord(description=remedy.description)
        records.append(record)
        try:
            path, result = _attempt(context, exporter, remedy.config, f"remedy{number}")
        except EdgeclsError as exc:
            record.error = str(exc)
            continue
        tried.append(remedy.config)
        record.accuracy, record.agreement = result.accuracy, result.agreement
        record.drop_pp, record.passed = round(result.drop_pp, 4), _passes(context, result)
        if (result.drop_pp, -result.agreement) < (best[1].drop_pp, -best[1].agreement):
            best = (path, result, remedy.config)
            for earlier in records:
                earlier.kept = False
            record.kept = True
        if record.passed:
            break
    return best


def _remedies(context: _Context, exporter: Exporter, quant: QuantizationConfig,
              tried: list[QuantizationConfig]) -> list[Remedy]:
    """Remedies in order of cost: the exporter's method change, more images, exclusions."""
    own = exporter.remedies(context.source, _with_validation(context, quant), tried)
    methods = [r for r in own if not r.config.exclude]
    heavier = [r for r in own if r.config.exclude]
    more = _more_images(context, quant)
    return methods + ([more] if more else []) + heavier


def _with_validation(context: _Context, quant: QuantizationConfig) -> QuantizationConfig:
    """Adds val-split images (never test images) for accuracy-controlled quantization."""
    assert context.split is not None
    items = sample_items(context.split.items("val"), _VALIDATION_FOR_ACCURACY_CONTROL)
    if not items:
        return quant
    return quant.replace(validation=load_arrays(items, context.source.metadata.input_size))


def _more_images(context: _Context, quant: QuantizationConfig) -> Remedy | None:
    preset = context.preset
    if preset is None or context.split is None:
        return None
    available = len(context.split.items("train"))
    count = min(preset.remedy_count, available)
    if count <= len(quant.calibration):
        return None
    images = split_calibration(context.split, context.source.metadata.input_size, preset, count)
    return Remedy(f"{len(images)} calibration images instead of {len(quant.calibration)}",
                  quant.replace(calibration=images))


def publish(tmp: Path, final: Path) -> None:
    """Moves an artifact (and an OpenVINO .bin beside it) into place, .bin first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for src in reversed(artifact_files(tmp)):
        dst = final.with_suffix(src.suffix)
        staged = dst.with_name(f".{dst.name}.incoming")
        shutil.copyfile(src, staged)
        os.replace(staged, dst)


def _guard_disk(action: Callable[[], Any], target: Path) -> Any:
    """Runs ``action``; a full disk or missing permission becomes a clear user error."""
    try:
        return action()
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise EdgeclsError(f"disk full while writing {target.name}: nothing was left "
                               "half-written", f"free space in {target.parent}") from None
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise EdgeclsError(f"cannot write {target}: {exc.strerror}",
                               "choose a writable --out folder") from None
        raise


def _record(context: _Context, exporter: Exporter, path: Path, quant: QuantizationConfig,
            result: Validation, remedies: list[RemedyRecord], seconds: float) -> ArtifactRecord:
    files = describe_files(path)
    return ArtifactRecord(
        format=exporter.name, precision=quant.precision,
        path=os.path.relpath(path, context.config.out),
        size_bytes=sum(f["size_bytes"] for f in files.values()),
        sha256=files[path.name]["sha256"], files=files,
        accuracy=result.accuracy, float_accuracy=result.float_accuracy,
        agreement=result.agreement, drop_pp=round(result.drop_pp, 4),
        kl_divergence=result.kl_divergence, per_class_change=result.per_class_change,
        passed=_passes(context, result), settings=exporter.settings(quant), remedies=remedies,
        backend_settings=result.backend_settings, export_seconds=round(seconds, 2))
