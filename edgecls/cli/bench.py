"""`edgecls bench` (measure models on this machine) and `edgecls report` (compare them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgecls.api.benching import benchmark
from edgecls.api.benching import report as compare_reports
from edgecls.bench.runner import BenchOptions
from edgecls.cli.app import app
from edgecls.cli.bench_table import print_report
from edgecls.cli.options import NO_PROGRESS_HELP, config_option
from edgecls.cli.remote import HOST_HELP, INSTALL_HELP, REMOTE_PYTHON_HELP, print_remote_bench
from edgecls.config import field_help


@app.command("bench")
def bench(
    models: list[Path] = typer.Argument(..., help="Model files (.tflite, .onnx or OpenVINO .xml), "
                                        "or folders of them such as an export folder or a run "
                                        "(its export/): every model file in it is measured."),
    json_path: Path = typer.Option(Path("bench.json"), "--json",
                                   help="Write the measurements to this JSON file."),
    data: Path = config_option(BenchOptions, "data"),
    reference: Path = config_option(BenchOptions, "reference"),
    target: str = config_option(BenchOptions, "target"),
    threads: str = typer.Option(None, help=field_help(BenchOptions, "threads")),
    runs: int = config_option(BenchOptions, "runs"),
    seconds: float = config_option(BenchOptions, "seconds"),
    warmup: int = config_option(BenchOptions, "warmup"),
    min_accuracy: float = config_option(BenchOptions, "min_accuracy"),
    labels_file: Path = config_option(BenchOptions, "labels_file", "--labels"),
    max_per_class: int = config_option(BenchOptions, "max_per_class"),
    device: str = config_option(BenchOptions, "device"),
    providers: str = config_option(BenchOptions, "providers"),
    timeout_s: float = config_option(BenchOptions, "timeout_s", "--timeout"),
    hosts: list[str] = typer.Option(None, "--host", help=HOST_HELP + " Repeat for several devices: they "
                                    "run in parallel and --json holds all of them (with --data, a fixed "
                                    "class-balanced sample of at most --max-per-class images, default 50, is sent)."),
    remote_python: str = typer.Option(None, help=REMOTE_PYTHON_HELP),
    install: str = typer.Option("index", help=INSTALL_HELP),
    verify: bool = config_option(BenchOptions, "verify", "--verify/--no-verify"),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Measure latency, size, memory and accuracy of model files on this machine.

    Each model (and thread count) is measured in a fresh process through the edgecls
    runtime, so memory figures do not mix and a model that fails to load or run is
    recorded as `failed` while the others continue. Exit code 2 for a user error (a
    missing model file, a folder, an unknown format, a bad option), found before
    measuring; 1 if any model failed or scored below --min-accuracy.

    With --host, the bench runs on each device over ssh instead (see docs/remote.md);
    exit code 1 also when a host failed or was unreachable.
    """
    from rich.console import Console

    result = benchmark(models, data, json_path=json_path, hosts=hosts, threads=threads, providers=providers,
                       remote_python=remote_python, install=install, reference=reference, target=target,
                       runs=runs, seconds=seconds, warmup=warmup, min_accuracy=min_accuracy,
                       labels_file=labels_file, max_per_class=max_per_class, device=device,
                       timeout_s=timeout_s, verify=verify, progress=not no_progress)
    console = Console()
    if hosts:
        print_remote_bench(result, console)
    else:
        print_report(result.merged, console)
        _warn_about_selection(result.records, console)
    console.print(f"wrote {json_path}")
    if not result.passed:
        raise typer.Exit(1)


def _warn_about_selection(records: list[dict[str, Any]], console: Any) -> None:
    """Says which images each model was scored on, loudly when training images may be among them."""
    seen = set()
    for record in records:
        selection = (record.get("accuracy") or {}).get("selection") or {}
        if not selection or record["file"] in seen:
            continue
        seen.add(record["file"])
        if selection.get("mode") == "held_out":
            unreadable = record["accuracy"].get("images_skipped") or 0
            scored = (f"scored on {record['accuracy']['images']} readable of the "
                      f"{selection['images_used']}" if unreadable else
                      f"scored on the {selection['images_used']}")
            console.print(f"{record['file']}: {scored} of {selection['images_given']} images its "
                          f"training run held out ({selection['excluded_as_training']} were "
                          "training images)", highlight=False)
        elif not selection.get("held_out_known"):
            console.print(f"[bold yellow]WARNING[/] {record['file']}: {selection.get('warning')}")


@app.command("report")
def report(
    files: list[Path] = typer.Argument(..., help="JSON files written by `edgecls bench --json`."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML page with plots."),
    md: Path = typer.Option(None, "--md", help="Write a Markdown table (for pull requests)."),
    changes: list[Path] = typer.Option(None, "--changes", help="A changes.html written by `edgecls export` "
                                       "(repeatable): its float vs INT8 heatmaps go into the HTML page."),
) -> None:
    """Compare bench results from one or more machines: table, HTML with plots, Markdown.

    Files of another schema version or broken JSON are skipped with a warning; models
    trained on different label sets are refused.
    """
    merged = compare_reports(files, html=html, md=md, changes=changes).merged
    print_report(merged)
    for path in (html, md):
        if path:
            typer.echo(f"wrote {path}")
