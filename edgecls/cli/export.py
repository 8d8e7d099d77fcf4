"""`edgecls export`: deployable artifacts validated against float."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import typer

from edgecls.cli.app import app
from edgecls.cli.tf_import import import_tensorflow_quietly
from edgecls.errors import GateError
from edgecls.explain.changes import write_changes_page
from edgecls.export.pipeline import ExportConfig, export_run
from edgecls.rundir import RunDir
from edgecls.runtime.base import BackendOptions
from edgecls.runtime.image_header import set_max_pixels
from edgecls.runtime.targets import load_target


def _csv(value: str) -> list[str]:
    return [v.strip().lower() for v in value.split(",") if v.strip()]


@app.command("export")
def export(
    run: Path = typer.Argument(..., help="Run directory of `edgecls train` (holds best.keras, split.json)."),
    formats: str = typer.Option("tflite,onnx,openvino", "--formats", "-f",
                                help="Comma-separated formats: tflite, onnx, openvino."),
    precision: str = typer.Option("int8", "--precision", "-p",
                                  help="Comma-separated precisions: int8, fp32, fp16, dynamic."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: RUN/export)."),
    target: str = typer.Option(None, "--target", "-t",
                               help="Device profile from targets/ (sets format and precision)."),
    calibration: str = typer.Option(None, "--calibration", "-c",
                                    help="Calibration preset (calibration/NAME.yaml), a preset YAML, "
                                         "or a folder of images. Default: 300 balanced train images."),
    max_drop: float = typer.Option(1.0, "--max-drop",
                                   help="Largest accepted top-1 accuracy drop vs float, in percentage points."),
    max_class_drop: float | None = typer.Option(
        None, "--max-class-drop",
        help="Also flag any class whose top-1 falls by more than this many points; only a "
             "drop that is real for that class's images (95 % interval above zero) fails. "
             "Default: off."),
    strict: bool = typer.Option(False, "--strict",
                                help="Fail (exit 2) when the held-out images are too few to tell "
                                     "a drop from the budget (verdict 'inconclusive'), not only "
                                     "on a real drop."),
    input_type: str = typer.Option("uint8", "--input-type",
                                   help="TFLite INT8 input/output dtype: uint8 (default; what MediaPipe "
                                        "Tasks and the Android Task Library take), int8 or float32."),
    remedies: bool = typer.Option(True, "--remedies/--no-remedies",
                                  help="When INT8 misses --max-drop, retry with other calibration "
                                       "settings and sensitive layers in float."),
    threads: int = typer.Option(None, "--threads", help="Threads for validation inference."),
    explain_changes: bool = typer.Option(False, "--explain/--no-explain",
                                         help="Also write OUT/changes.html: held-out images whose top-1 "
                                              "INT8 changed, with float and INT8 heatmaps (RISE). Which "
                                              "images changed comes from the validation just done "
                                              "(OUT/predictions.json); off by default because RISE takes "
                                              "~2 x 250 inferences per image shown (4 per artifact)."),
    max_pixels: str = typer.Option(None, "--max-pixels", help=(
        "Refuse images whose header declares more pixels than this (e.g. 90M), before "
        "decoding them. Default: 64M, or $EDGECLS_MAX_PIXELS.")),
    dynamic_batch: bool = typer.Option(False, "--dynamic-batch",
                                       help="ONNX/OpenVINO input with a dynamic batch dimension. Default: "
                                            "batch 1, static, which OpenVINO's benchmark_app and NPU plugin, "
                                            "and TensorRT take without extra shape settings."),
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
    set_max_pixels(max_pixels)
    RunDir(run).require_model()
    import_tensorflow_quietly()
    from rich.console import Console

    if target:
        formats, precision = _from_target(target)
    config = ExportConfig(out=out or run / "export", formats=_csv(formats),
                          precisions=_csv(precision), calibration=calibration,
                          max_drop=max_drop, max_class_drop=max_class_drop, strict=strict,
                          input_type=input_type.lower(), remedies=remedies,
                          options=BackendOptions(threads=threads), target=target,
                          dynamic_batch=dynamic_batch)
    console = Console()
    _warn_int8_input(config, console)
    with _progress(console) as say, _nncf_bars_muted():
        manifest = export_run(run, config, progress=say)
    _render(manifest, console)
    console.print(f"manifest: {config.out / 'manifest.json'}")
    if explain_changes:
        _explain_changes(run, config, manifest, console)
    _gate(manifest)


def _explain_changes(run: Path, config: Any, manifest: Any, console: Any) -> None:
    """OUT/changes.html: what INT8 changed, with both models' heatmaps (edgecls.explain)."""
    int8 = [config.out / a.path for a in manifest.artifacts if a.precision == "int8"]
    if int8:
        with console.status("explaining the top-1 changes of INT8 (RISE)..."):
            changes = write_changes_page(run, int8, config.out / "changes.html", config.options.threads)
        counts = ", ".join(f"{c.artifact.name} {c.changed}" for c in changes)
        console.print(f"top-1 changed vs float: {counts}; heatmaps: {config.out / 'changes.html'}")


def _warn_int8_input(config: Any, console: Any) -> None:
    if config.input_type == "int8" and "tflite" in config.formats and "int8" in config.precisions:
        console.print("[yellow]warning:[/] --input-type int8: MediaPipe Tasks and the Android Task "
                      "Library refuse int8 input tensors (they take uint8 or float32); the default "
                      "uint8 runs everywhere.")


def _from_target(name: str) -> tuple[str, str]:
    """Format and precision of a device profile in targets/."""
    profile = load_target(name)
    return profile.format, profile.precision


@contextlib.contextmanager
def _nncf_bars_muted() -> Iterator[None]:
    """Silences rich's global console for the call: NNCF (3.4) draws its progress bars
    ("Statistics collection", "Applying Fast Bias correction", accuracy control's
    "Collecting outputs"...) on it and has no switch to turn them off; edgecls' own
    bar and table use their own console, which stays as it is."""
    import rich

    shared = rich.get_console()
    previous, shared.quiet = shared.quiet, True
    try:
        yield
    finally:
        shared.quiet = previous


class _progress:
    """A rich progress bar fed by the pipeline's (message, fraction) callback; none off a
    terminal (``> export.log``), where rich would leave a blank line."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        live = console.is_terminal and not console.is_dumb_terminal
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                             TimeElapsedColumn(), console=console, transient=True) if live else None
        self._task = self._bar.add_task("export", total=1.0) if self._bar else None

    def __enter__(self):
        if self._bar is None:
            return lambda message, fraction: None
        self._bar.__enter__()
        return lambda message, fraction: self._bar.update(
            self._task, description=message, completed=fraction)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


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


def _gate(manifest: Any) -> None:
    failed = manifest.failed
    if not failed:
        return
    names = ", ".join(f"{a.path} ({a.verdict}: {a.drop_pp:+.2f} pp)" for a in failed)
    if all(a.verdict == "inconclusive" for a in failed):
        raise GateError(f"{names}: too few held-out images to judge against "
                        f"{manifest.max_drop_pp:g} pp, and --strict was given",
                        "add held-out images (see the line above for how many) or drop --strict")
    raise GateError(f"{names}: lost more than {manifest.max_drop_pp:g} pp of accuracy vs float "
                    "(or a class more than --max-class-drop), and the loss is real",
                    "try --calibration thorough (more images, other methods), a calibration "
                    "folder closer to your data, fp16, or a larger --max-drop; see manifest.json")
