"""The terminal table of a merged report (rich), one table per target."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgecls.bench.columns import TERMINAL_COLUMNS, cells, failure_notes, machine_summary
from edgecls.bench.report import MergedReport

_STATUS_STYLE = {"passed": "green", "below_floor": "yellow", "failed": "red"}


def print_report(merged: MergedReport, console: Console | None = None) -> None:
    """Prints warnings, then one table per target group."""
    console = console or Console()
    for warning in merged.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for group, rows in merged.groups().items():
        machines = {machine_summary(row.machine) for row in rows}
        table = Table(title=f"[bold]{group}[/]", caption="\n".join(sorted(machines)),
                      title_justify="left", caption_justify="left")
        for name, _, right, _ in TERMINAL_COLUMNS:
            table.add_column(name, justify="right" if right else "left", overflow="fold")
        for row in rows:
            table.add_row(*cells(row, TERMINAL_COLUMNS), style=_STATUS_STYLE.get(row.record["status"]))
        console.print(table)
        for note in failure_notes(rows):
            console.print(f"  [red]{escape(note)}[/]", highlight=False, soft_wrap=True)
