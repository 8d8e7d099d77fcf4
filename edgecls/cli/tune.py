"""`edgecls tune`: search for the most accurate model that meets a latency and size budget
measured on the target, then train and export the winner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from edgecls.cli.app import app
from edgecls.config import field_default, field_help
from edgecls.tune.options import TuneOptions


def _help(name: str) -> str:
    return field_help(TuneOptions, name)


@app.command("tune")
def tune(
    data: Path = typer.Option(None, "--data", help="Image folder (as for `edgecls train`)."),
    out: Path = typer.Option(..., "--out", help="Tuning folder: trials, study, report and best/."),
    max_latency: str = typer.Option(None, "--max-latency", help=_help("max_latency")),
    max_size: str = typer.Option(None, "--max-size", help=_help("max_size")),
    latency_percentile: int = typer.Option(field_default(TuneOptions, "latency_percentile"), "--latency-percentile",
                                           help=_help("latency_percentile")),
    host: str = typer.Option(None, "--host", help=_help("host")),
    target: str = typer.Option(None, "--target", help=_help("target")),
    time_budget: str = typer.Option(None, "--time", help=_help("time_budget")),
    trials: int = typer.Option(None, "--trials", min=1, help=_help("trials")),
    resume: bool = typer.Option(False, "--resume", help="Continue the study in --out with its saved settings."),
    storage: str = typer.Option(None, "--storage", help=_help("storage")),
    study: str = typer.Option(None, "--study", help=_help("study")),
    families: str = typer.Option(None, "--families", help=_help("families")),
    sizes: str = typer.Option(None, "--sizes", help=_help("sizes")),
    mac_reductions: str = typer.Option(None, "--mac-reductions", help=_help("mac_reductions")),
    formats: str = typer.Option(None, "--formats", help=_help("formats")),
    threads: str = typer.Option(None, "--threads", help=_help("threads")),
    final_epochs: int = typer.Option(None, "--final-epochs", help=_help("final_epochs")),
    seed: int = typer.Option(field_default(TuneOptions, "seed"), "--seed", help=_help("seed")),
    no_progress: bool = typer.Option(False, "--no-progress", help="Do not print the search's messages as it runs."),
) -> None:
    """Find the most accurate model that meets the budget, measured on the target.

    Each trial samples a candidate (family, input size, structured-pruning MAC reduction,
    fine-tune settings, format, threads). Its latency and size are measured, not
    estimated: an INT8 artifact with untrained weights is benched on the target, once
    per architecture (cached per target and runtime version). A candidate over budget
    is never trained. The others train at low fidelity (the head on cached features,
    then a short fine-tune), ranked on val accuracy; successive halving stops losers
    early. The finalists are benched again with their trained weights (one over budget
    drops out); the winner is trained in full and exported through the accuracy gate into
    OUT/best/run and OUT/best/export; OUT/index.html, OUT/trials.csv and OUT/pareto.png
    show every trial and the Pareto front.
    """
    from edgecls.api.tuning import run_tune

    options = TuneOptions(max_latency=max_latency, max_size=max_size, latency_percentile=latency_percentile,
                          host=host, target=target, time_budget=time_budget, trials=trials, storage=storage,
                          study=study, families=families, sizes=sizes, mac_reductions=mac_reductions,
                          formats=formats, threads=threads, final_epochs=final_epochs, seed=seed)
    result = run_tune(options, data, out, resume, progress=not no_progress)
    _render(result, Console())
    if result.interrupted:
        typer.echo(f"interrupted: continue with `edgecls tune --out {out} --resume`", err=True)
        raise typer.Exit(130)


def _render(result: Any, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"trials ({result.summary['figures']})")
    for column in ("trial", "state", "candidate", "latency ms", "size MB", "trained ms", "val acc"):
        table.add_column(column, justify="left" if column in ("state", "candidate") else "right")
    for row in result.trials:
        candidate = f"{row['family']} {row['size']}px mac-{(row['mac_reduction'] or 0):.2f} {row['format']}"
        state = row["state"] + (" *" if row["pareto"] else "")
        if row.get("repeat_of") is not None:
            state += f" (repeat of {row['repeat_of']})"
        table.add_row(str(row["trial"]), state, candidate,
                      _latency(row), _num(row["size_mb"], 2), _num(row.get("trained_latency_ms"), 2),
                      _num(row["val_accuracy"], 4))
    console.print(table)
    summary = result.summary
    console.print(f"{summary['trials']} trials: {summary['complete']} complete, {summary['pruned']} pruned, "
                  f"{summary['over_budget']} over budget (not trained), {summary['failed']} failed, "
                  f"{summary.get('repeats', 0)} repeats (result reused); latency measured "
                  f"{summary['latency_measured_here']}x ({summary.get('latency_benches_here', 0)} benches, "
                  f"{summary.get('latency_remeasured_here', 0)} borderline re-measured), "
                  f"{summary['latency_cache_hits']} cache hits. *: Pareto front; latency: median (range) of "
                  "the rounds, ~: re-measured, the range held the limit", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    winner = result.winner
    if winner:
        console.print(f"winner: trial {winner['trial']} {winner['family']} {winner['size']}px, "
                      f"{winner['latency_ms']:.2f} ms, {winner['size_bytes'] / 1e6:.2f} MB "
                      f"({winner['figures']}); test accuracy {_num(winner['float_test_accuracy'], 4)} (float), "
                      f"INT8 gate {winner['gate']}; run {winner['run']}; "
                      f"artifact {winner['artifact']}", highlight=False, soft_wrap=True)


def _latency(row: dict[str, Any]) -> str:
    """The median of the rounds, their range, and ``~`` when the range held the limit."""
    text = _num(row["latency_ms"], 2)
    if row.get("latency_min_ms") is not None and row.get("latency_max_ms") is not None:
        text += f" ({row['latency_min_ms']:.2f}-{row['latency_max_ms']:.2f})"
    return text + (" ~" if str(row.get("budget_decision")).startswith("remeasured") else "")


def _num(value: Any, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
