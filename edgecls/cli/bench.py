"""`edgecls bench` (measure models on this machine) and `edgecls report` (compare them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from edgecls.atomic import write_text_atomic
from edgecls.bench.render_html import render_html
from edgecls.bench.render_md import render_markdown
from edgecls.bench.report import merge_records, merge_reports
from edgecls.bench.runner import BenchOptions, run_bench
from edgecls.bench.schema import STATUS_PASSED, dump_report
from edgecls.bench.targets import apply_target
from edgecls.cli.app import app
from edgecls.cli.bench_table import print_report
from edgecls.cli.remote import HOST_HELP, INSTALL_HELP, REMOTE_PYTHON_HELP, bench_remote
from edgecls.errors import EdgeclsError
from edgecls.explain.changes import embed_changes
from edgecls.formats import MODEL_SUFFIXES, format_for_path, without_side_files
from edgecls.runtime.backends import backend_for_suffix, check_model_file


@app.command("bench")
def bench(
    models: list[Path] = typer.Argument(..., help="Model files (.tflite, .onnx or OpenVINO .xml), "
                                        "or folders of them such as an export folder or a run "
                                        "(its export/): every model file in it is measured."),
    json_out: Path = typer.Option(Path("bench.json"), "--json",
                                  help="Write the measurements to this JSON file."),
    data: Path = typer.Option(None, help="Labelled images: DIR/CLASS/*, a pre-split dataset "
                              "(its test or val subset), or a run directory (its test split). "
                              "Of a folder, each edgecls model scores only the files its "
                              "training run held out (recomputed from the split rule it "
                              "carries); a model without one scores all, with a WARNING."),
    reference: Path = typer.Option(None, help="Model to compare top-1 predictions with (e.g. the fp32 "
                                   "artifact of the same run); needs --data."),
    target: str = typer.Option(None, help="Target profile name recorded with the results "
                               "(e.g. raspberry-pi-4); its threads/device/providers apply unless given."),
    threads: str = typer.Option(None, help="Thread count(s), comma-separated, e.g. 1,2,4: one record "
                                "per count. Default: the target's, else the backend's choice."),
    runs: int = typer.Option(100, help="Timed runs per model (after the warm-up)."),
    seconds: float = typer.Option(None, help="Time budget per model instead of --runs."),
    warmup: int = typer.Option(10, help="Untimed runs before timing."),
    min_accuracy: float = typer.Option(None, help="Top-1 floor: below it a model's status is "
                                       "below_floor. Needs --data."),
    labels: Path = typer.Option(None, help="Labels file for models without embedded labels (one per line)."),
    max_per_class: int = typer.Option(None, help="Score at most this many images per class."),
    device: str = typer.Option(None, help="OpenVINO device (CPU, GPU, NPU)."),
    providers: str = typer.Option(None, help="ONNX Runtime execution providers, comma-separated."),
    timeout: float = typer.Option(1800.0, help="Seconds before one model's measurement is abandoned."),
    host: list[str] = typer.Option(None, "--host", help=HOST_HELP + " Repeat for several devices: they "
                                   "run in parallel and --json holds all of them (with --data, a fixed "
                                   "class-balanced sample of at most --max-per-class images, default 50, is sent)."),
    remote_python: str = typer.Option(None, help=REMOTE_PYTHON_HELP),
    install: str = typer.Option("index", help=INSTALL_HELP),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Check each model against the "
                                "digest embedded at export (--no-verify measures a damaged file anyway)."),
) -> None:
    """Measure latency, size, memory and accuracy of model files on this machine.

    Each model (and thread count) is measured in a fresh process through the edgecls
    runtime, so memory figures do not mix and a model that fails to load or run is
    recorded as `failed` while the others continue. Exit code 2 for a user error (a
    missing model file, a folder, an unknown format, a bad option), found before
    measuring; 1 if any model failed or scored below --min-accuracy.

    With --host, the bench runs on each device over ssh instead (see README, "Devices over
    SSH"); exit code 1 also when a host failed or was unreachable.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    options = BenchOptions(
        data=data, reference=reference, target=target, threads=_parse_threads(threads),
        warmup=warmup, runs=runs, seconds=seconds, min_accuracy=min_accuracy, labels_file=labels,
        max_per_class=max_per_class, device=device, providers=_split(providers), timeout_s=timeout,
        verify=verify,
    )
    _check_output(json_out)
    models = models_in(models)
    _check_models(models)
    if host:
        return bench_remote(models, options, host, json_out, remote_python, install)
    apply_target(options, threads_given=threads is not None)
    console = Console()
    steps = len(models) * len(options.threads) + (1 if reference else 0)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("bench", total=steps)
        report = run_bench(models, options, progress=_ticker(progress, task))
    write_text_atomic(json_out, dump_report(report))
    print_report(merge_records([report], check_labels=False), console)
    _warn_about_selection(report["records"], console)
    console.print(f"wrote {json_out}")
    if any(r["status"] != STATUS_PASSED for r in report["records"]):
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
    merged = merge_reports(files)
    print_report(merged)
    if html:
        page = render_html(merged)
        if changes:
            page = embed_changes(page, changes)
        write_text_atomic(html, page)
        typer.echo(f"wrote {html}")
    if md:
        write_text_atomic(md, render_markdown(merged))
        typer.echo(f"wrote {md}")


def _ticker(progress: Any, task: Any) -> Callable[[str], None]:
    """A progress callback: each message starts a new step."""
    started = {"count": 0}

    def tick(message: str) -> None:
        if started["count"]:
            progress.advance(task)
        started["count"] += 1
        progress.update(task, description=f"measuring {message}")

    return tick


def _check_output(path: Path) -> None:
    """Fails before a long bench, not after it, when the JSON cannot be written."""
    if path.is_dir():
        raise EdgeclsError(f"--json {path} is a folder", "give a file name, e.g. --json bench.json")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise EdgeclsError(f"cannot write {path}: {parent} is not a folder")


def models_in(paths: list[Path]) -> list[Path]:
    """``paths`` with each folder replaced by the model files in it (a run's: in its
    ``export/``), in name order, and side files of given models dropped (``model_*``
    matches OpenVINO's ``.bin``). A folder without any is a user error."""
    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        found = _model_files(path) or _model_files(path / "export")
        if not found:
            raise EdgeclsError(f"{path} is a folder without model files ({', '.join(MODEL_SUFFIXES)})",
                               "pass model files, an export folder or a run exported with "
                               "`edgecls export RUN`")
        out.extend(found)
    return without_side_files(out)


def _model_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and format_for_path(p) is not None)


def _check_models(models: list[Path]) -> None:
    """A missing file, a folder or an unknown suffix is a user error (exit 2), found
    before measuring anything; a file that fails to load is a ``failed`` record."""
    for model in models:
        check_model_file(model)
        backend_for_suffix(model)


def _parse_threads(text: str | None) -> list[int | None]:
    if text is None:
        return [None]
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EdgeclsError(f"--threads {text!r} is not a list of integers", "e.g. --threads 1,2,4") from None
    if not counts:
        raise EdgeclsError("--threads is empty", "e.g. --threads 2")
    return list(dict.fromkeys(counts))


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None
