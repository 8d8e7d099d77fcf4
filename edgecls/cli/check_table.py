"""Rendering a dataset check on the terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from edgecls.data.check import CheckReport

MAX_LISTED = 10


def render_check(report: CheckReport, console: Console) -> None:
    """Prints the per-class table, then problems, warnings and errors."""
    console.print(f"[bold]{report.root}[/] ({report.layout} layout)", highlight=False)
    console.print(_class_table(report))
    data = report.to_json()
    if data["image_size_range"]:
        console.print(_sizes_line(report), highlight=False)
    if report.imbalance_ratio:
        console.print(f"imbalance ratio (largest / smallest class): {report.imbalance_ratio:.2f}")
    _list(console, "unreadable files (excluded)",
          [f"{p}: {why}" for p, why in data["unreadable_reasons"].items()])
    _list(console, "images in a format edgecls does not read (excluded)",
          [f"{p}: {why}" for p, why in data["unsupported_images"].items()])
    _list(console, "non-image files (ignored)", data["non_images"])
    _list(console, "identical files under different classes (label conflict, all copies excluded)",
          [" = ".join(g) for g in data["duplicates_across_classes"]])
    _list(console, "identical files within a class (kept once)",
          [" = ".join(g) for g in data["duplicates_within_class"]])
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for error in report.errors:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
    if not report.errors:
        console.print(f"[green]ok:[/] {data['total_usable']} usable images in {len(report.labels)} classes")


def _sizes_line(report: CheckReport) -> str:
    """Heights and widths apart (a range of both would invent sizes no image has), then
    the most common sizes as width x height, the way image viewers show them."""
    (h_lo, w_lo), (h_hi, w_hi) = report.size_range
    common = ", ".join(f"{w}x{h} ({n})" for (h, w), n in report.common_sizes)
    return f"image sizes: heights {h_lo}..{h_hi} px, widths {w_lo}..{w_hi} px; most common (w x h): {common}"


def _class_table(report: CheckReport) -> Table:
    subsets = [s for s in report.usable if s is not None]
    table = Table()
    table.add_column("class")
    for subset in subsets:
        table.add_column(subset, justify="right")
    table.add_column("usable", justify="right")
    for label, count in report.class_counts.items():
        style = "red" if count == 0 else None
        cells = [str(len(report.usable[s].get(label, []))) for s in subsets]
        table.add_row(label, *cells, str(count), style=style)
    return table


def _list(console: Console, title: str, lines: list[str]) -> None:
    if not lines:
        return
    console.print(f"[bold]{title}[/] ({len(lines)}):", highlight=False)
    for line in lines[:MAX_LISTED]:
        console.print(f"  {line}", highlight=False, markup=False)
    if len(lines) > MAX_LISTED:
        console.print(f"  ... and {len(lines) - MAX_LISTED} more (see --json)")
