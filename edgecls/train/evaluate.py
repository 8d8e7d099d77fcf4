"""Evaluation of a trained run on one split of its own split manifest.

The JSON report (``metrics.json`` for the test split, or ``--json FILE``) holds::

    schema_version, run, model, split, num_samples, accuracy, top_k, top_<k>_accuracy,
    per_class {label: {precision, recall, f1, support}}, macro_avg, weighted_avg,
    balanced_accuracy, weak_classes {mean_recall, gap_pp, far_below, too_few_images},
    labels, confusion_matrix (rows true, columns predicted)

Schema 2 added ``balanced_accuracy`` and ``weak_classes`` (see ``edgecls.metrics``);
``read_report`` fills them in when it reads a schema-1 file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.atomic import write_text_atomic
from edgecls.data.pipeline import load_arrays
from edgecls.data.split import Split
from edgecls.errors import DataError
from edgecls.metrics import balanced_accuracy, classification_metrics, weak_classes
from edgecls.models.float_model import input_size, load_float_model, predict
from edgecls.rundir import RunDir
from edgecls.train.plots import save_confusion_png

EVAL_SCHEMA_VERSION = 2


def evaluate_run(run_dir: str | Path, split: str = "test", top_k: int = 5,
                 json_path: str | Path | None = None, batch_size: int = 64,
                 model: Any = None) -> dict[str, Any]:
    """Evaluates the run's best model on one subset of the run's split.

    Writes ``metrics.json``, ``confusion_matrix.png`` and ``classification_report.txt``
    into the run for the test split; with ``json_path`` also that JSON file and a PNG
    beside it (same name, ``.png``).

    Args:
        run_dir: directory of an ``edgecls train`` run.
        split: ``"train"``, ``"val"`` or ``"test"``.
        top_k: k of the top-k accuracy.
        json_path: extra JSON report to write.
        batch_size: images per inference batch.
        model: an already loaded model (default: the run's ``best.keras``).

    Returns:
        The report as a dict (see the module docstring).
    """
    run = RunDir(Path(run_dir))
    model_path = run.require_model()
    manifest = Split.load(run.split)
    items = manifest.items(split)
    if not items:
        raise DataError(f"the {split} split of {run.root} has no images",
                        "evaluate another split with --split val or --split train")
    if model is None:
        model = load_float_model(model_path)
    images, labels = load_arrays(items, input_size(model))
    scores = predict(model, images, batch_size)
    report = {"schema_version": EVAL_SCHEMA_VERSION, "run": str(run.root),
              "model": str(model_path), "split": split,
              **classification_metrics(labels, scores, manifest.labels, top_k)}
    _write_outputs(run, report, json_path)
    return report


def read_report(path: str | Path) -> dict[str, Any]:
    """Reads an evaluation JSON report of any schema version, as the current one.

    Raises:
        DataError: the file is missing or is not an evaluation report.
    """
    path = Path(path)
    try:
        report = json.loads(path.read_text())
        return upgrade_report(report)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a readable evaluation report ({exc})",
                        "write one with `edgecls evaluate RUN --json FILE`") from None


def upgrade_report(report: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 report with the schema-2 fields computed from its per-class rows."""
    if report.get("schema_version", 1) >= 2:
        return report
    labels = report["labels"]
    recall = np.array([report["per_class"][label]["recall"] for label in labels])
    support = np.array([report["per_class"][label]["support"] for label in labels])
    matrix = np.asarray(report["confusion_matrix"])
    return {**report, "schema_version": EVAL_SCHEMA_VERSION,
            "balanced_accuracy": balanced_accuracy(matrix),
            "weak_classes": weak_classes(recall, support, labels)}


def _write_outputs(run: RunDir, report: dict[str, Any], json_path: str | Path | None) -> None:
    text = json.dumps(report, indent=1)
    title = f"{Path(report['run']).name}: {report['split']} accuracy {report['accuracy']:.3f}"
    if report["split"] == "test":
        write_text_atomic(run.metrics, text)
        save_confusion_png(report["confusion_matrix"], report["labels"], run.confusion_png, title)
        write_text_atomic(run.report_txt, format_report(report))
    if json_path is not None:
        json_path = Path(json_path)
        write_text_atomic(json_path, text)
        save_confusion_png(report["confusion_matrix"], report["labels"],
                           json_path.with_suffix(".png"), title)


def format_report(metrics: dict[str, Any]) -> str:
    """A text table like scikit-learn's ``classification_report``."""
    labels = metrics["labels"]
    width = max([len(label) for label in labels] + [len("weighted avg")])
    lines = [f"{'':>{width}}  precision    recall  f1-score   support", ""]
    for label in labels:
        lines.append(_report_line(label, metrics["per_class"][label], width))
    lines.append("")
    total = metrics["num_samples"]
    lines.append(f"{'accuracy':>{width}}  {'':>9}  {'':>8}  {metrics['accuracy']:8.4f}  {total:8d}")
    k = metrics.get("top_k")
    if k:
        lines.append(f"{f'top-{k} acc':>{width}}  {'':>9}  {'':>8}  "
                     f"{metrics[f'top_{k}_accuracy']:8.4f}  {total:8d}")
    lines.append(f"{'balanced acc':>{width}}  {'':>9}  {'':>8}  "
                 f"{metrics['balanced_accuracy']:8.4f}  {total:8d}")
    lines.append(_report_line("macro avg", metrics["macro_avg"], width))
    lines.append(_report_line("weighted avg", metrics["weighted_avg"], width))
    lines.extend(weak_class_lines(metrics["weak_classes"]))
    return "\n".join(lines) + "\n"


def weak_class_lines(weak: dict[str, Any]) -> list[str]:
    """Plain-text lines naming the classes far below the mean recall (none: no lines)."""
    lines = []
    mean, gap = weak["mean_recall"], weak["gap_pp"]
    if weak["far_below"]:
        lines.append(f"far below the mean recall {mean:.3f} (more than {gap:g} points, beyond what "
                     f"their image counts explain): {_class_list(weak['far_below'])}")
    if weak["too_few_images"]:
        lines.append(f"more than {gap:g} points below the mean recall {mean:.3f}, but too few images "
                     f"to tell: {_class_list(weak['too_few_images'])}")
    return lines


def _class_list(entries: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['label']} {e['recall']:.3f} ({e['support']} images, 95% "
                     f"{e['interval'][0]:.2f}-{e['interval'][1]:.2f})" for e in entries)


def _report_line(name: str, row: dict[str, Any], width: int) -> str:
    return (f"{name:>{width}}  {row['precision']:9.4f}  {row['recall']:8.4f}  "
            f"{row['f1']:8.4f}  {row['support']:8d}")
