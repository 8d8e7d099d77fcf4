"""The terminal table of a merged report (rich), one table per target.

Wide terminals get one row per model; narrow ones (a Pi's console, a pipe at 80
columns) get the same cells transposed, one column per model, so no number is cut.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgecls.bench.columns import (TERMINAL_CAPTION, TERMINAL_COLUMNS, baseline_notes, cells, failure_notes,
                                   host_lines, machine_summary)
from edgecls.bench.report import MergedReport, Row

_STATUS_STYLE = {"passed": "green", "below_floor": "yellow", "failed": "red", "unreachable": "red"}
WIDE_TABLE_MIN_WIDTH = 112


def print_report(merged: MergedReport, console: Console | None = None) -> None:
    """Prints warnings, then one table per target group with its failure reasons."""
    console = console or Console()
    for warning in merged.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for status, line in host_lines(merged.hosts):
        console.print(f"[{_STATUS_STYLE.get(status, 'red')}]host {escape(line)}[/]", highlight=False, soft_wrap=True)
    for group, rows in merged.groups().items():
        caption = "\n".join([*sorted({machine_summary(row.machine) for row in rows}), TERMINAL_CAPTION])
        wide = console.width >= WIDE_TABLE_MIN_WIDTH
        table = _wide_table(rows) if wide else _narrow_table(rows)
        table.title, table.caption = f"[bold]{escape(group)}[/]", escape(caption)
        console.print(table)
        for note in failure_notes(rows):
            console.print(f"  [red]{escape(note)}[/]", highlight=False, soft_wrap=True)
        for note in baseline_notes(rows):
            console.print(f"  [dim]{escape(note)}[/]", highlight=False, soft_wrap=True)


def _wide_table(rows: list[Row]) -> Table:
    table = _table()
    for name, _, right, _ in TERMINAL_COLUMNS:
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    for row in rows:
        table.add_row(*cells(row, TERMINAL_COLUMNS), style=_STATUS_STYLE.get(row.record["status"]))
    return table


def _narrow_table(rows: list[Row]) -> Table:
    table = _table()
    table.add_column("")
    for row in rows:
        style = _STATUS_STYLE.get(row.record["status"])
        table.add_column(row.label, justify="right", overflow="fold", header_style=style)
    columns = [cells(row, TERMINAL_COLUMNS) for row in rows]
    for index, (name, _, _, _) in enumerate(TERMINAL_COLUMNS):
        if name != "model":
            table.add_row(name, *(column[index] for column in columns))
    return table


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAD, title_justify="left", caption_justify="left", pad_edge=False)
