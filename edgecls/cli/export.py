"""`edgecls export`: deployable artifacts validated against float."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgecls.api.exporting import ExportResult, export_config, export_run_dir
from edgecls.api.options import EXPLAIN_CHANGES_HELP, EXPORT_THREADS_HELP, MAX_PIXELS_HELP
from edgecls.cli.app import app
from edgecls.cli.options import NO_PROGRESS_HELP, config_option
from edgecls.export.pipeline import ExportConfig
from edgecls.rundir import ExportDir


@app.command("export")
def export(
    ctx: typer.Context,
    run: Path = typer.Argument(..., help="Run directory of `edgecls train` (holds best.keras, split.json)."),
    formats: str = config_option(ExportConfig, "formats", "--formats", "-f"),
    precisions: str = config_option(ExportConfig, "precisions", "--precision", "-p"),
    out: Path = config_option(ExportConfig, "out", "--out", "-o"),
    target: str = config_option(ExportConfig, "target", "--target", "-t"),
    calibration: str = config_option(ExportConfig, "calibration", "--calibration", "-c"),
    max_drop: float = config_option(ExportConfig, "max_drop", "--max-drop"),
    max_class_drop: float | None = config_option(ExportConfig, "max_class_drop", "--max-class-drop"),
    strict: bool = config_option(ExportConfig, "strict", "--strict"),
    input_type: str = config_option(ExportConfig, "input_type", "--input-type"),
    remedies: bool = config_option(ExportConfig, "remedies", "--remedies/--no-remedies"),
    threads: int = typer.Option(None, "--threads", help=EXPORT_THREADS_HELP),
    explain: bool = typer.Option(False, "--explain/--no-explain", help=EXPLAIN_CHANGES_HELP),
    max_pixels: str = typer.Option(None, "--max-pixels", help=MAX_PIXELS_HELP),
    dynamic_batch: bool = config_option(ExportConfig, "dynamic_batch", "--dynamic-batch"),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Export a trained run to TFLite / ONNX / OpenVINO and validate every artifact.

    Each artifact is run through the edgecls runtime on every held-out image of the run
    (its val and test splits, never seen by training) and compared with the float Keras
    model on the same images: the drop with its 95 % interval, the predictions that
    changed each way, the worst class. Verdicts: PASS (within --max-drop, and the images
    suffice to tell), FAIL (over budget and the drop is real: red, exit code 2),
    INCONCLUSIVE (too few held-out images to tell: a warning saying how many would be
    needed; exit 0 unless --strict). Writes the artifacts and OUT/manifest.json.
    """
    from rich.console import Console

    options = dict(out=out, target=target, calibration=calibration, max_drop=max_drop,
                   max_class_drop=max_class_drop, strict=strict, input_type=input_type, remedies=remedies,
                   threads=threads, dynamic_batch=dynamic_batch)
    formats = formats if _given(ctx, "formats") else None  # a --target fills what was not given
    precisions = precisions if _given(ctx, "precisions") else None
    console = Console()
    _warn_int8_input(export_config(run, formats, precisions, **options), console)
    result = export_run_dir(run, formats, precisions, max_pixels=max_pixels, progress=not no_progress,
                            **options)
    _render(result.manifest, console)
    console.print(f"manifest: {ExportDir(result.out).manifest}")
    if explain:
        _explain_changes(run, result, threads, console)
    result.check()


def _given(ctx: typer.Context, option: str) -> bool:
    """True when the user gave ``option`` (not left to its default)."""
    source = ctx.get_parameter_source(option)
    return source is not None and source.name != "DEFAULT"


def _explain_changes(run: Path, result: ExportResult, threads: int | None, console: Any) -> None:
    """OUT/changes.html: what INT8 changed, with both models' heatmaps (edgecls.explain)."""
    with console.status("explaining the top-1 changes of INT8 (RISE)..."):
        changes = result.explain_changes(run, threads)
    if changes:
        counts = ", ".join(f"{c.artifact.name} {c.changed}" for c in changes)
        console.print(f"top-1 changed vs float: {counts}; heatmaps: {ExportDir(result.out).changes_page}")


def _warn_int8_input(config: Any, console: Any) -> None:
    if config.input_type == "int8" and "tflite" in config.formats and "int8" in config.precisions:
        console.print("[yellow]warning:[/] --input-type int8: MediaPipe Tasks and the Android Task "
                      "Library refuse int8 input tensors (they take uint8 or float32); the default "
                      "uint8 runs everywhere.")


_VERDICT_STYLE = {"passed": "[green]PASS[/]", "failed": "[bold red]FAIL[/]",
                  "inconclusive": "[yellow]INCONCLUSIVE[/]"}


def _render(manifest: Any, console: Any) -> None:
    """The gate table (fits 80 columns), then one line per artifact with its worst class and
    kept remedy when there is one, then the reason of every verdict but ``passed``."""
    from rich.table import Table

    splits = " + ".join(f"{n} {k}" for k, n in manifest.held_out_by_split.items())
    table = Table(title=f"float top-1 {100 * manifest.float_accuracy:.2f}% on "
                        f"{manifest.held_out_images} held-out images ({splits}); "
                        f"budget {manifest.max_drop_pp:g} pp")
    table.add_column("artifact", no_wrap=True)
    for column in ("top-1 %", "drop pp", "95% interval", "-/+"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("gate", no_wrap=True)
    for a in manifest.artifacts:
        drop = f"{a.drop_pp:+.2f}" + ("*" if a.tuning_images else "")
        table.add_row(a.path, f"{100 * a.accuracy:.2f}", drop, _interval(a.interval_pp),
                      f"{a.right_to_wrong}/{a.wrong_to_right}", _VERDICT_STYLE.get(a.verdict, a.verdict),
                      style=None if a.passed else "red")
    console.print(table)
    console.print("-/+: predictions right with float and wrong with the artifact / the reverse",
                  style="dim")
    for line in _tuned_footnotes(manifest):
        console.print(line, style="dim", highlight=False)
    for a in manifest.artifacts:
        details = _details(a)
        if details:
            console.print(f"{a.path}: {details}", style="dim", highlight=False)
    for a in manifest.artifacts:
        if a.verdict != "passed":
            colour = "red" if a.verdict == "failed" else "yellow"
            console.print(f"[{colour}]{a.path}: {a.verdict}[/]: {a.gate_note}")


def _tuned_footnotes(manifest: Any) -> list[str]:
    """``*``: the rows scored on fewer images than the header's, and why."""
    tuned = [a for a in manifest.artifacts if a.tuning_images]
    by_count: dict[tuple[int, int], list[str]] = {}
    for a in tuned:
        by_count.setdefault((a.validated_images, a.tuning_images), []).append(a.path)
    return [f"*: {', '.join(paths)} scored on {validated} of the {manifest.held_out_images} "
            f"held-out images: the other {tuning} (val) tuned {'its' if len(paths) == 1 else 'their'} "
            "accuracy-controlled quantization, so they cannot judge it"
            for (validated, tuning), paths in by_count.items()]


def _interval(bounds: Any) -> str:
    return f"[{bounds[0]:+.1f}, {bounds[1]:+.1f}]" if bounds else "-"


def _details(artifact: Any) -> str:
    """The INT8 quantizer, worst class (when it lost anything) and the remedy kept (or how
    many were tried)."""
    parts = []
    if artifact.precision == "int8" and artifact.settings.get("quantizer"):
        parts.append(f"quantized by {artifact.settings['quantizer']}")
    worst = artifact.worst_class
    if worst and worst["right_to_wrong"] > worst["wrong_to_right"]:
        parts.append(f"worst class {worst['name']} {worst['drop_pp']:+.1f} pp "
                     f"(-{worst['right_to_wrong']}/+{worst['wrong_to_right']} of {worst['images']})")
    if artifact.remedies:
        kept = next((r.description for r in artifact.remedies if r.kept), "")
        parts.append(f"remedy kept: {kept}" if kept else f"{len(artifact.remedies)} remedies tried, none kept")
    return "; ".join(parts)
