"""`edgecls explain`: what a model looks at, as heatmaps; float and INT8 side by side.

The library is imported inside the command: for artifacts it runs through the
TensorFlow-free runtime, so it works on a device without TensorFlow.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from edgecls.api.explaining import explain_images
from edgecls.cli.app import app
from edgecls.cli.options import NO_PROGRESS_HELP
from edgecls.formats import format_for_path
from edgecls.present.tf_import import import_tensorflow_quietly


@app.command("explain")
def explain(
    model: Path = typer.Argument(..., help="A training run (its float best.keras), a .keras file, "
                                 "or an artifact: .tflite, .onnx or OpenVINO .xml."),
    images: list[Path] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the PNGs, explanations.json and "
                             "(for folders) contact_sheet.png."),
    method: str = typer.Option("auto", help="auto | gradcam | gradcam++ | rise | occlusion. auto: Grad-CAM "
                               "for Keras models; RISE for artifacts and for comparisons that involve one."),
    class_name: str = typer.Option(None, "--class", help="Explain this class instead of the predicted one."),
    top_k: int = typer.Option(1, "--top-k", min=1, help="Explain the k most probable classes of each image."),
    compare: Path = typer.Option(None, help="A second model (typically the INT8 artifact of the same run): "
                                 "same classes, same method and masks, side by side, with their rank "
                                 "correlation and top-20% overlap."),
    masks: int = typer.Option(500, min=8, help="RISE: random masks per image (cost: one inference each)."),
    grid: int = typer.Option(8, min=2, help="RISE: mask cells per side (coarser = larger regions)."),
    batch_size: int = typer.Option(16, min=1, help="RISE/occlusion: masked images per inference call."),
    window: float = typer.Option(0.125, min=0.01, max=1.0, help="Occlusion: window side as a fraction of the input."),
    seed: int = typer.Option(0, help="RISE mask seed."),
    labels: Path = typer.Option(None, help="Labels file for models without embedded labels."),
    threads: int = typer.Option(None, min=1, help="Inference threads for artifacts."),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Explain a classifier's decisions with heatmaps, for the float model or any artifact.

    Float Keras models (a run or a .keras file) get Grad-CAM on the last convolutional
    stage. Artifacts (.tflite/.onnx/.xml, e.g. INT8) get RISE or occlusion through the
    edgecls runtime, without TensorFlow, so this also runs on a Raspberry Pi (RISE with
    500 masks costs 500 inferences per image: lower --masks on a slow device).

    Writes one PNG per image (original, heatmap over it, label and score; a second row
    for --compare), explanations.json for all images (heatmaps as 14x14 grids, method,
    class, score, timing, schema_version) and a contact sheet when given a folder.

    Example: edgecls explain runs/flowers photos/ --compare runs/flowers/export/model_int8.tflite --out why/
    """
    started = time.perf_counter()
    if needs_tensorflow(model, compare):
        import_tensorflow_quietly()  # muted like every command's; counted in the total time
    from rich.console import Console

    explained = explain_images(model, images, out, method=method, class_name=class_name, top_k=top_k,
                               compare=compare, masks=masks, grid=grid, batch_size=batch_size, window=window,
                               seed=seed, labels=labels, threads=threads, progress=not no_progress)
    _print_summary(explained.report, explained.json_path, Console(stderr=True, highlight=False),
                   time.perf_counter() - started)


def needs_tensorflow(model: Path, compare: Path | None) -> bool:
    """True when the model or the one compared with it is a run or a .keras file."""
    return any(path is not None and format_for_path(path) is None for path in (model, compare))


def _method_seconds(result) -> float:
    """Seconds the method took on one image, for every model explained (each
    explanation's ``seconds`` covers all its classes)."""
    return sum(found[0].seconds for found in (result.explanations, result.compared) if found)


def timing_line(report, total_seconds: float) -> str:
    """What the time went to: the method per image, and the command in all."""
    method = {"rise": "RISE", "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++"}.get(report.method, report.method)
    per_image = [_method_seconds(r) for r in report.results]
    models = " for both models" if report.compared_model is not None else ""
    mean = f"{method} {sum(per_image) / len(per_image):.1f} s per image{models}; " if per_image else ""
    return f"{mean}{total_seconds:.0f} s in all including model loading"


def _print_summary(report, json_path: Path, console, total_seconds: float) -> None:
    for result in report.results:
        name = result.path.name if result.path else "image"
        parts = [f"{e.class_name} {e.score:.2f}" for e in result.explanations]
        line = f"{name}: {', '.join(parts)} ({report.method}, {_method_seconds(result):.2f} s)"
        if result.differences:
            diff = result.differences[0]
            changed = " [bold red]top-1 changed[/]" if result.top1_changed else ""
            line += (f"  vs {report.compared_model.name}: rank corr {diff.rank_correlation:.2f}, "
                     f"top-20% IoU {diff.top_overlap:.2f}{changed}")
        console.print(line, soft_wrap=True)
    for skipped in report.skipped:
        console.print(f"[yellow]skipped[/] {skipped['image']}: {skipped['reason']}", soft_wrap=True)
    console.print(f"{len(report.results)} image(s) explained ({timing_line(report, total_seconds)}); "
                  f"written to {json_path.parent}")
