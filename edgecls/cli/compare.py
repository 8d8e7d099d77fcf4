"""`edgecls compare NEW OLD`: is the next model really better than the deployed one?
(``edgecls.compare_runs``)"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgecls.api.comparing import COLUMNS, ModelComparison, compare_runs
from edgecls.cli.app import app
from edgecls.stats import BETTER, WORSE

VERDICT_STYLE = {BETTER: "green", WORSE: "red"}


@app.command("compare")
def compare(
    new: Path = typer.Argument(..., help="The new model: a run directory or an exported artifact."),
    old: Path = typer.Argument(..., help="The deployed model: a run directory or an exported artifact."),
    json_path: Path = typer.Option(None, "--json", help="Also write the report to this JSON file "
                                   "(`edgecls deploy --comparison` reads it)."),
    new_run: Path = typer.Option(None, "--new-run", help="The run that trained NEW, when NEW is an "
                                 "artifact outside its run's export/ folder."),
    old_run: Path = typer.Option(None, "--old-run", help="The run that trained OLD, likewise."),
) -> None:
    """Compare two models on the same held-out images: NEW's test split, minus what OLD
    trained on, on the classes both know.

    Prints both accuracies, their paired difference with its 95% interval (the export
    gate's statistics), the images new since OLD (in NEW's split, not in OLD's), OLD's own
    test images (forgetting shows there), per-class changes, and a verdict: better, worse
    or no resolved difference. A class only NEW knows is reported apart.
    """
    result = compare_runs(new, old, json_path=json_path, new_run=new_run, old_run=old_run)
    _print(result, Console(highlight=False))
    if json_path is not None:
        typer.echo(f"report written to {json_path}")


def _print(result: ModelComparison, console: Console) -> None:
    comparison = result.comparison
    table = Table(title=f"NEW {comparison.new.path} vs OLD {comparison.old.path}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("images", "verdict") else "right")
    for row in result.rows():
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for line in result.notes():
        console.print(escape(line), style="yellow" if line.startswith("left out") else None)
    console.print(escape(result.summary()), style=VERDICT_STYLE.get(result.verdict, "bold"))
