"""Export + validate + gate for one run: the library behind ``edgecls export``.

For every (format, precision): export to a scratch folder, run the artifact through the
edgecls runtime on every held-out image of the run (its val and test splits), compare
with the float Keras model on the same images, and for an INT8 artifact whose estimated
drop is over budget try remedies (another calibration method, more calibration images,
sensitive layers kept in float; one quick remedy when the drop is real but its interval
reaches past the budget) before publishing the best attempt atomically. The
verdict (``export.gate``) weighs the drop against its 95 % interval.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from edgecls.config import option
from edgecls.data.calibration import (CalibrationPreset, calibration_images, sample_items,
                                      split_calibration)
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import HELD_OUT, Split, hash_rule
from edgecls.errors import ConfigError, DataError, EdgeclsError, ModelError
from edgecls.export import metadata as md
from edgecls.export import gate
from edgecls.export.base import Exporter, ExportSource, QuantizationConfig, Remedy, get_exporter, list_formats
from edgecls.export.manifest import ArtifactRecord, Manifest, RemedyRecord, describe_files
from edgecls.export.predictions import HeldOutPredictions
from edgecls.export.publish import ExportTransaction, export_transaction
from edgecls.export.validate import Validation, validate_artifact
from edgecls.formats import FORMAT_NAMES, IO_TYPES, PRECISIONS
from edgecls.models.float_model import input_size, load_float_model, predict
from edgecls.rundir import ExportDir, RunDir
from edgecls.runtime.base import BackendOptions
from edgecls.runtime.cpu import cpu_info
from edgecls.stats import NO_DROP, DropBudget

_VALIDATION_FOR_ACCURACY_CONTROL = 300
_ACCURACY_CONTROLLED = ("accuracy_control", "nncf_accuracy_control")  # methods that tune on val
OVER_BUDGET = "over_budget"  # remedy triggers: see remedy_trigger
REAL_AND_UNRESOLVED = "real_and_unresolved"
Progress = Callable[[str, float], None]  # (message, fraction of the work done)


@dataclass
class ExportConfig:
    """Options of one ``edgecls export`` call; each field's ``help`` is its option's help.

    ``stem`` (artifact file name stem) and ``options`` (runtime backend options of the
    validation; ``--threads``) have no option of their own name.
    """

    out: Path = option(help="Output folder. Default: RUN/export.")
    formats: list[str] = option(default_factory=lambda: list(FORMAT_NAMES),
                                help="Comma-separated formats: tflite, onnx, openvino.")
    precisions: list[str] = option(default_factory=lambda: ["int8"],
                                   help="Comma-separated precisions: int8, fp32, fp16, dynamic.")
    calibration: str | None = option(None, help=(
        "Calibration preset (calibration/NAME.yaml), a preset YAML, or a folder of images. "
        "Default: 300 balanced train images."))
    max_drop: float = option(1.0, help="Largest accepted top-1 accuracy drop vs float, in percentage points.")
    max_class_drop: float | None = option(None, help=(
        "Also flag any class whose top-1 falls by more than this many points; only a "
        "drop that is real for that class's images (95 % interval above zero) fails. Default: off."))
    strict: bool = option(False, help=(
        "Fail (exit 2) when the held-out images are too few to tell a drop from the budget "
        "(verdict 'inconclusive'), not only on a real drop."))
    input_type: str = option("uint8", help=(
        "TFLite INT8 input/output dtype: uint8 (what MediaPipe Tasks and the Android Task "
        "Library take), int8 or float32."))
    remedies: bool = option(True, help=(
        "When INT8 misses --max-drop, retry with other calibration settings and sensitive "
        "layers in float."))
    stem: str = "model"
    options: BackendOptions | None = None
    target: str | None = option(None, help="Device profile from targets/ (sets format and precision).")
    dynamic_batch: bool = option(False, help=(
        "ONNX/OpenVINO input with a dynamic batch dimension. Default: batch 1, static, which "
        "OpenVINO's benchmark_app and NPU plugin, and TensorRT take without extra shape settings."))


@dataclass
class _Context:
    """What every artifact of one export shares."""

    run: RunDir
    config: ExportConfig
    source: ExportSource
    split: Split | None
    images: np.ndarray  # every held-out image, val then test (uint8)
    labels: np.ndarray
    splits: np.ndarray  # split name of each image
    float_probs: np.ndarray
    tuning: np.ndarray  # held-out images given to accuracy-controlled remedies (bool mask)
    predictions: HeldOutPredictions  # per-image top-1 of float and each artifact (predictions.json)
    calibration: np.ndarray | None = None
    preset: CalibrationPreset | None = None
    calibration_note: str | None = None
    transaction: ExportTransaction | None = None


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
    if config.max_class_drop is not None and config.max_class_drop < 0:
        raise ConfigError(f"--max-class-drop must be >= 0, got {config.max_class_drop}")
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
    with export_transaction(config.out) as transaction:  # all artifacts + manifest, or none
        say("loading the model and the held-out images", 0.0)
        context = _context(run, model_path, config, transaction.work)
        context.transaction = transaction
        manifest = _new_manifest(context)
        jobs = [(e, p) for e in exporters for p in config.precisions]
        for index, (exporter, precision) in enumerate(jobs):
            say(f"{exporter.name} {precision}", index / len(jobs))
            manifest.artifacts.append(_export_one(context, exporter, precision))
        say("writing manifest.json", 1.0)
        out = ExportDir(config.out)
        _guard_disk(lambda: transaction.add_text(out.PREDICTIONS, context.predictions.to_json()),
                    out.predictions)
        _guard_disk(lambda: transaction.commit(manifest), out.manifest)
    return manifest


def _context(run: RunDir, model_path: Path, config: ExportConfig, work: Path) -> _Context:
    model = load_float_model(model_path)
    size = input_size(model)
    split, held_out, split_names = _held_out(run)
    labels = (run.read_labels() if run.labels.is_file() else None) or split.labels
    calibration = None, None, None
    if "int8" in config.precisions:  # first: a bad calibration folder fails fast
        calibration = calibration_images(config.calibration, split, size)
    images, held_out_labels = load_arrays(held_out, size)  # uint8: 4x less memory
    extra = {"run": run.root.name, "split": hash_rule(split)}
    meta = md.base_metadata(labels, size, model.name, extra=extra)
    saved_model = work / "saved_model"
    _export_saved_model(model, saved_model)
    source = ExportSource(model=model, saved_model=saved_model, metadata=meta, work_dir=work,
                          dynamic_batch=config.dynamic_batch)
    float_probs = predict(model, images)
    context = _Context(run=run, config=config, source=source, split=split, images=images,
                       labels=held_out_labels, splits=split_names, float_probs=float_probs,
                       tuning=_tuning_mask(split, held_out),
                       predictions=HeldOutPredictions.from_float(
                           split.root, held_out, list(split_names), labels, float_probs))
    context.calibration, context.preset, context.calibration_note = calibration
    return context


def _held_out(run: RunDir) -> tuple[Split, list[tuple[Path, int]], np.ndarray]:
    """The run's split, its held-out items (val then test) and the split name of each."""
    split = Split.load(run.split) if run.split.is_file() else None
    names = [name for name in HELD_OUT if split and name in split.subsets]
    items = [(item, name) for name in names for item in split.items(name)]  # type: ignore[union-attr]
    if split is None or not items:
        raise DataError(f"{run.root} has no held-out (val/test) split to validate the artifacts on",
                        "export a run made by `edgecls train` (it writes split.json)")
    if not split.root.is_dir():
        raise DataError(f"the run's dataset folder {split.root} is not there (from {Path.cwd()}); the "
                        "artifacts are validated on its held-out images",
                        "run from the folder you trained in, or put the dataset back")
    return split, [item for item, _ in items], np.array([name for _, name in items])


def _tuning_mask(split: Split, held_out: list[tuple[Path, int]]) -> np.ndarray:
    """Which held-out images accuracy-controlled quantization may tune on (val only)."""
    chosen = {path for path, _ in sample_items(split.items("val"), _VALIDATION_FOR_ACCURACY_CONTROL)}
    return np.array([path in chosen for path, _ in held_out], dtype=bool)


def _export_saved_model(model: Any, path: Path) -> None:
    try:
        model.export(str(path), format="tf_saved_model", verbose=False)
    except Exception as exc:  # Keras/TF raise many types for untraceable layers
        raise ModelError(f"cannot export the Keras model to a SavedModel: "
                         f"{str(exc).splitlines()[0][:300]}",
                         "custom layers need get_config() and a traceable call()") from None


def _new_manifest(context: _Context) -> Manifest:
    meta = context.source.metadata
    correct = context.float_probs.argmax(1) == context.labels
    by_split = {name: int(np.sum(context.splits == name)) for name in HELD_OUT
                if np.any(context.splits == name)}
    config = context.config
    return Manifest(run=str(context.run.root), model=str(context.run.best_model),
                    labels=meta.labels, input_size=meta.input_size,
                    max_drop_pp=config.max_drop, held_out_images=len(context.labels),
                    held_out_by_split=by_split, float_accuracy=float(np.mean(correct)),
                    float_accuracy_by_split={name: round(float(np.mean(correct[context.splits == name])), 6)
                                             for name in by_split},
                    calibration=context.calibration_note, cpu=cpu_info().summary(),
                    target=config.target, max_class_drop_pp=config.max_class_drop,
                    strict=config.strict, gate_method=gate.METHOD)


def _quant_config(context: _Context, exporter: Exporter, precision: str) -> QuantizationConfig:
    if precision != "int8":
        return QuantizationConfig.for_precision(precision)
    assert context.preset is not None
    quant = QuantizationConfig.for_int8(
        context.calibration, method=context.preset.method(exporter.name),
        io_type=context.config.input_type, max_drop=DropBudget(context.config.max_drop))
    if quant.method in _ACCURACY_CONTROLLED:  # a preset (thorough: OpenVINO) asks for it first
        quant = _with_validation(context, quant)
    return quant


def _export_one(context: _Context, exporter: Exporter, precision: str) -> ArtifactRecord:
    quant = _quant_config(context, exporter, precision)
    final = context.config.out / exporter.artifact_name(context.config.stem, quant)
    started = time.perf_counter()
    path, result = _attempt(context, exporter, quant, "first")
    best = (path, result, quant)
    remedies: list[RemedyRecord] = []
    skipped = None
    trigger = remedy_trigger(result, context.config.max_drop) if precision == "int8" else None
    if context.config.remedies and trigger == OVER_BUDGET:
        skipped = why_no_remedies(result)
        if skipped is None:
            best = _try_remedies(context, exporter, best, remedies)
    elif context.config.remedies and trigger == REAL_AND_UNRESOLVED:
        best = _try_remedies(context, exporter, best, remedies, quick_only=True)
    path, result, quant = best
    assert context.transaction is not None
    staged = _guard_disk(lambda: context.transaction.stage(path, final), final)
    record = _record(context, exporter, final, staged, quant, result, remedies,
                     time.perf_counter() - started)
    if skipped:
        record.gate_note = f"{record.gate_note}; {skipped}" if record.gate_note else skipped
    context.predictions.add(final.name, record.sha256, _compared(context, quant), result.top1,
                            result.float_top1_probability)
    return record


def _attempt(context: _Context, exporter: Exporter, quant: QuantizationConfig,
             tag: str) -> tuple[Path, Validation]:
    folder = Path(tempfile.mkdtemp(prefix=f"{exporter.name}-{quant.precision}-{tag}-",
                                   dir=context.source.work_dir))
    path = folder / exporter.artifact_name(context.config.stem, quant)
    _guard_disk(lambda: exporter.export(context.source, quant, path), path)
    keep = _compared(context, quant)
    result = validate_artifact(path, context.images[keep], context.labels[keep],
                               context.float_probs[keep], context.source.metadata.labels,
                               context.config.options, splits=context.splits[keep])
    return path, result


def _compared(context: _Context, quant: QuantizationConfig) -> np.ndarray:
    """The held-out images an artifact is judged on: all but those it was tuned on."""
    return ~context.tuning if quant.validation is not None else np.ones(len(context.labels), bool)


def _passes(context: _Context, result: Validation) -> bool:
    """The estimated drop is within budget (what stops remedies; the verdict, which also
    weighs the interval, is ``gate.judge``)."""
    return result.passed(context.config.max_drop)


def remedy_trigger(result: Validation, max_drop_pp: float) -> str | None:
    """Why an INT8 attempt calls for remedies, or None when it does not.

    ``OVER_BUDGET``: the estimated drop is over budget (the whole ladder runs, until an
    attempt's estimate is within it). ``REAL_AND_UNRESOLVED``: the estimate is within
    budget, but the drop is real (its interval excludes zero) and its interval reaches past
    the budget, so the verdict would be inconclusive: the exporter's first remedy is tried
    when it is quick (``Remedy.quick``: TFLite's other quantizers, not accuracy control),
    and kept only if it measures better (on MobileNetV3-Large from scratch the TFLite
    converter's +0.79 pp [+0.28, +1.31] became +0.24 [-0.13, +0.62] with percentile
    ranges, 125 s for the artifact).
    """
    if not result.passed(max_drop_pp):
        return OVER_BUDGET
    drop = result.paired
    if drop is not None and NO_DROP.exceeded_by(drop.low_pp) and DropBudget(max_drop_pp).exceeded_by(drop.high_pp):
        return REAL_AND_UNRESOLVED
    return None


def why_no_remedies(result: Validation) -> str | None:
    """Why an over-budget artifact gets no remedies, or None when it should.

    When the artifact lost a single held-out prediction (net) and that alone is over the
    budget (fewer than 100 / max_drop held-out images), every remedy would be judged on
    that one image: accuracy control then reverts layers to float on noise (measured:
    42 of 60 on a 58-image held-out set, 24 min, a bigger artifact, no better verdict)."""
    assert result.paired is not None
    counts = result.paired.counts
    if counts.right_to_wrong - counts.wrong_to_right > 1:
        return None
    return ("remedies not tried: the drop is one image, over the budget only because the "
            "held-out images are few; no remedy could be told apart from it")


def _try_remedies(context: _Context, exporter: Exporter, best: tuple, records: list[RemedyRecord],
                  quick_only: bool = False):
    """Remedies in order until one's estimate is within budget (``quick_only``: the first
    remedy alone, and only when it is quick); the best attempt measured is kept."""
    tried = [best[2]]
    for number, remedy in enumerate(_remedies(context, exporter, best[2], tried), start=1):
        if quick_only and (number > 1 or not remedy.quick):
            break
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
              tried: list[QuantizationConfig]) -> Iterator[Remedy]:
    """Remedies, built only when reached: the exporter's own in its order of measured payoff
    (another quantizer or method), more calibration images, then its costly last resort
    (layers kept in float after a layer-by-layer analysis)."""
    yield from exporter.remedies(context.source, _with_validation(context, quant), tried)
    more = _more_images(context, quant)
    if more:
        yield more
    last = exporter.last_resort(context.source, quant)
    if last:
        yield last


def _with_validation(context: _Context, quant: QuantizationConfig) -> QuantizationConfig:
    """Adds val-split images for accuracy-controlled quantization; the gate leaves them
    out of the comparison of any artifact quantized with them."""
    if not context.tuning.any():
        return quant
    return quant.replace(validation=(context.images[context.tuning],
                                     context.labels[context.tuning]))


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


def _record(context: _Context, exporter: Exporter, path: Path, staged: Path,
            quant: QuantizationConfig, result: Validation, remedies: list[RemedyRecord],
            seconds: float) -> ArtifactRecord:
    files = describe_files(staged)
    config = context.config
    tuning = int(np.sum(~_compared(context, quant)))
    dataset_images = sum(len(entries) for entries in context.split.subsets.values()) \
        if context.split else None
    verdict = gate.judge(result, config.max_drop, config.max_class_drop, config.strict, tuning,
                         dataset_images)
    worst = verdict.worst_class
    return ArtifactRecord(
        format=exporter.name, precision=quant.precision,
        path=os.path.relpath(path, config.out),
        size_bytes=sum(f["size_bytes"] for f in files.values()),
        sha256=files[path.name]["sha256"], files=files,
        accuracy=result.accuracy, float_accuracy=result.float_accuracy,
        agreement=result.agreement, drop_pp=round(result.drop_pp, 4),
        kl_divergence=result.kl_divergence, per_class_drop_pp=result.per_class_drop_pp,
        passed=verdict.passed, verdict=verdict.verdict,
        interval_pp=(round(verdict.drop.low_pp, 4), round(verdict.drop.high_pp, 4)),
        right_to_wrong=verdict.drop.counts.right_to_wrong,
        wrong_to_right=verdict.drop.counts.wrong_to_right, images=result.images,
        images_by_split=result.images_by_split, validated_images=result.images,
        tuning_images=tuning, images_needed=verdict.images_needed,
        smallest_budget_pp=verdict.smallest_budget_pp,
        worst_class={"name": worst[0], **worst[1].to_dict()} if worst else None,
        flagged_classes=[f.to_dict() for f in verdict.flagged_classes], gate_note=verdict.note,
        settings=exporter.settings(quant), remedies=remedies,
        backend_settings=result.backend_settings, export_seconds=round(seconds, 2))
