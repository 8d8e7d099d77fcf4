"""`edgecls compare NEW OLD`: is the next model really better than the deployed one?"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgecls.atomic import write_text_atomic
from edgecls.cli.app import app
from edgecls.present.tf_import import import_tensorflow_quietly
from edgecls.export.compare import Comparison, SliceResult, compare_models, resolve_side
from edgecls.stats import BETTER, WORSE

VERDICT_STYLE = {BETTER: "green", WORSE: "red"}


@app.command("compare")
def compare(
    new: Path = typer.Argument(..., help="The new model: a run directory or an exported artifact."),
    old: Path = typer.Argument(..., help="The deployed model: a run directory or an exported artifact."),
    json_out: Path = typer.Option(None, "--json", help="Also write the report to this JSON file "
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
    new_side, old_side = resolve_side(new, new_run), resolve_side(old, old_run)
    if "run" in (new_side.kind, old_side.kind):
        import_tensorflow_quietly()
    result = compare_models(new_side, old_side)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result.to_dict(), indent=1) + "\n")
    _print(result, Console(highlight=False))
    if json_out is not None:
        typer.echo(f"report written to {json_out}")


def _print(result: Comparison, console: Console) -> None:
    table = Table(title=f"NEW {result.new.path} vs OLD {result.old.path}")
    for column in ("images", "n", "OLD", "NEW", "NEW - OLD (95% interval)", "verdict"):
        table.add_column(column, justify="left" if column in ("images", "verdict") else "right")
    rows = [("all held-out", result.overall), ("new since OLD", result.new_images),
            ("OLD's test images", result.old_test_images)]
    rows += [(f"  class {name}", r) for name, r in result.per_class.items()]
    for name, row in rows:
        table.add_row(*_cells(escape(name), row))
    console.print(table)
    for name, info in result.new_only_classes.items():
        accuracy = "-" if info["new_accuracy"] is None else f"{100 * info['new_accuracy']:.2f}%"
        console.print(f"class {escape(name)} only NEW knows: NEW {accuracy} on {info['images']} test images")
    if result.excluded_trained_by_old:
        console.print(f"left out: {result.excluded_trained_by_old} test image(s) of NEW that OLD trained "
                      "or validated on (train NEW with --init-from OLD to keep OLD's held-out images held out)",
                      style="yellow")
    console.print(escape(result.summary()), style=VERDICT_STYLE.get(result.verdict, "bold"))


def _cells(name: str, row: SliceResult | None) -> tuple[str, ...]:
    if row is None:
        return name, "0", "-", "-", "-", "-"
    d = row.paired
    return (name, str(row.images), f"{100 * row.old_accuracy:.2f}%", f"{100 * row.new_accuracy:.2f}%",
            f"{0.0 - d.drop_pp:+.2f} [{0.0 - d.high_pp:+.2f}, {0.0 - d.low_pp:+.2f}]", row.verdict)
