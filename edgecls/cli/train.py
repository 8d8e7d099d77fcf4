"""`edgecls train` and `edgecls evaluate`: fit a classifier on an image folder and
evaluate a finished run. TensorFlow is imported inside the commands only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from edgecls.api.options import MAX_PIXELS_HELP
from edgecls.api.run import evaluate_run_dir
from edgecls.api.training import run_training, training_config
from edgecls.cli.app import app
from edgecls.cli.options import NO_PROGRESS_HELP, config_option
from edgecls.config import field_help
from edgecls.data.split import SUBSETS, Split
from edgecls.runtime.image_header import set_max_pixels
from edgecls.train.config import TrainConfig
from edgecls.train.distribute import Placement
from edgecls.train.evaluate import weak_class_lines


@app.command("train")
def train(
    data: Path = config_option(TrainConfig, "data", "--data"),
    out: Path = typer.Option(..., "--out", help=field_help(TrainConfig, "out")),
    model: str = config_option(TrainConfig, "model", "--model", unset=True),
    img_size: int = config_option(TrainConfig, "img_size", "--img-size", unset=True),
    epochs: int = config_option(TrainConfig, "epochs", "--epochs", unset=True),
    weights: str = config_option(TrainConfig, "weights", "--weights", unset=True),
    batch_size: int = config_option(TrainConfig, "batch_size", "--batch-size", unset=True),
    lr: float = config_option(TrainConfig, "lr", "--lr", unset=True),
    alpha: float = config_option(TrainConfig, "alpha", "--alpha", unset=True),
    patience: int = config_option(TrainConfig, "patience", "--patience", unset=True),
    seed: int = config_option(TrainConfig, "seed", "--seed", unset=True),
    deterministic: bool = config_option(TrainConfig, "deterministic", "--deterministic", unset=True),
    config: Path = typer.Option(None, "--config",
                                help="YAML file with TrainConfig keys; command-line options override it."),
    resume: bool = typer.Option(False, "--resume",
                                help="Continue the run in --out from its last finished epoch, with the same split."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Do not draw progress bars."),
    init_from: Path = config_option(TrainConfig, "init_from", "--init-from"),
    max_pixels: str = typer.Option(None, "--max-pixels", help=MAX_PIXELS_HELP),
) -> None:
    """Train a classifier on a folder of labelled images.

    Without --model and --weights: EfficientNet-Lite0 from ImageNet weights when the
    pretrained extra is installed, else MobileNetV3-Small from scratch (a warning says
    what to install). The choice is printed first and saved in config.yaml.
    From scratch (`--weights none`) all layers train in one phase. With pretrained
    weights the new head trains first on the frozen backbone, then the upper backbone
    layers fine-tune at a lower learning rate. The run directory receives config.yaml,
    split.json, labels.txt, history.csv, best.keras, checkpoints/, metrics.json,
    confusion_matrix.png and classification_report.txt.

    Several GPUs train together (tf.distribute MirroredStrategy; --batch-size is the
    global batch). With TF_CONFIG describing a cluster, start the same command on every
    machine: the chief writes the run directory (see docs/training.md,
    "Train on several GPUs / machines").
    """
    set_max_pixels(max_pixels)
    train_config, choice = training_config(
        out, data, config, resume, model=model, img_size=img_size, epochs=epochs, weights=weights,
        batch_size=batch_size, lr=lr, alpha=alpha, patience=patience, seed=seed, deterministic=deterministic,
        init_from=str(init_from) if init_from else None)
    if choice.warning:
        Console(stderr=True).print(f"[yellow]warning:[/] {escape(choice.warning)}",
                                   highlight=False, soft_wrap=True)
    size_given = "from --img-size" if img_size is not None else "as saved in the run" if resume else None
    try:
        result = run_training(train_config, resume=resume, progress=not no_progress,
                              on_split=None if resume else _print_split,
                              on_input_size=_model_line(choice.describe(), size_given))
    except KeyboardInterrupt:
        typer.echo(f"interrupted: continue with `edgecls train --out {out} --resume`", err=True)
        raise typer.Exit(130) from None
    typer.echo(f"trained {result.epochs} epochs{_on_replicas(result.placement)}"
               + ("" if result.kept else f"; best val accuracy {result.best_val_accuracy:.4f}"))
    if result.kept:
        typer.echo(result.kept)  # which epoch best.keras holds, and why
    if not result.chief:
        typer.echo(f"this worker is done; the chief writes the run directory {out}")
        return
    if result.test_metrics:
        metrics = result.test_metrics
        typer.echo(f"test accuracy {metrics['accuracy']:.4f}, balanced accuracy "
                   f"{metrics['balanced_accuracy']:.4f} on {metrics['num_samples']} images")
        for line in weak_class_lines(metrics["weak_classes"]):
            typer.echo(line)
    typer.echo(f"run directory: {out}")


def _model_line(model: str, size_given: str | None) -> Callable[[int, str], None]:
    """Prints the resolved model and weights with the input size and where it came from."""
    def echo(size: int, source: str) -> None:
        typer.echo(f"{model}; input {size}x{size} px ({size_given or source})")

    return echo


def _print_split(split: Split) -> None:
    """Counts per subset, then what the data check warned about (files excluded, small
    classes, imbalance): a newcomer sees it without running `edgecls data check`."""
    counts = {subset: len(split.items(subset)) for subset in SUBSETS}
    typer.echo(f"data: {counts['train']} train, {counts['val']} val, {counts['test']} test images "
               f"in {len(split.labels)} classes")
    console = Console(stderr=True)
    for note in split.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)


def _on_replicas(placement: Placement) -> str:
    if placement.kind == "multi_worker" and placement.cluster is not None:
        return (f" on {placement.replicas} replicas of {placement.cluster.workers} workers "
                f"(this is worker {placement.cluster.rank})")
    return f" on {placement.replicas} mirrored replicas" if placement.distributed else ""


@app.command("evaluate")
def evaluate(
    run: Path = typer.Argument(..., help="Run directory of `edgecls train`."),
    split: str = typer.Option("test", "--split", help="Subset of the run's split: train, val or test."),
    json_path: Path = typer.Option(None, "--json",
                                   help="Also write the report to this JSON file (and a PNG beside it)."),
    top_k: int = typer.Option(5, "--top-k", help="k of the top-k accuracy."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per inference batch."),
    gallery: int = typer.Option(8, "--gallery", min=0, help="Draw the N most confident mistakes with "
                                "Grad-CAM heatmaps into a PNG beside the JSON (mistakes.png; 0: none)."),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Evaluate a run's best model: accuracy, balanced accuracy (mean recall), top-k,
    per-class precision/recall/F1, macro and weighted averages, the classes far below
    the mean recall (more than 15 points, with a 95% interval that excludes the mean),
    confusion matrix (JSON and PNG), and a gallery of the most confident mistakes with
    heatmaps of the predicted and the true class."""
    evaluation = evaluate_run_dir(run, split, json_path, top_k, batch_size, gallery, progress=not no_progress)
    console = Console()
    _print_report(evaluation.report, console)
    if json_path:
        typer.echo(f"report written to {json_path}")
    if evaluation.gallery_png is not None:
        console.print(f"most confident mistakes: {evaluation.gallery_png}")
    elif gallery and (json_path or split == "test"):
        console.print("no mistakes to show")


def _print_report(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    weak = report["weak_classes"]
    far = {entry["label"] for entry in weak["far_below"]}
    table = Table(title=f"{report['split']} split of {report['run']}")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for label in report["labels"]:
        row = report["per_class"][label]
        table.add_row(label, f"{row['precision']:.4f}", f"{row['recall']:.4f}",
                      f"{row['f1']:.4f}", str(row["support"]), style="red" if label in far else None)
    for name in ("macro_avg", "weighted_avg"):
        row = report[name]
        table.add_row(name.replace("_", " "), f"{row['precision']:.4f}", f"{row['recall']:.4f}",
                      f"{row['f1']:.4f}", str(row["support"]), style="bold")
    console.print(table)
    k = report.get("top_k")
    top_k = f"top-{k} accuracy {report[f'top_{k}_accuracy']:.4f}   " if k else ""
    console.print(f"accuracy {report['accuracy']:.4f}   balanced accuracy "
                  f"{report['balanced_accuracy']:.4f}   {top_k}({report['num_samples']} images)")
    for line in weak_class_lines(weak):
        console.print(escape(line), style="yellow", highlight=False, soft_wrap=True)
