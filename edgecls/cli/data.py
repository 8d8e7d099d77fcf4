"""`edgecls data ...`: check a dataset folder, write the demo dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecls.api.data import check_data, write_digits
from edgecls.api.options import MAX_PIXELS_HELP
from edgecls.cli.app import app
from edgecls.cli.check_table import render_check
from edgecls.cli.options import NO_PROGRESS_HELP

data_app = typer.Typer(help="Check image folders and prepare datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
def check(
    data_dir: Path = typer.Argument(..., help="Dataset folder: DIR/<class>/* or DIR/{train,val,test}/<class>/*."),
    json_path: Path = typer.Option(None, "--json", help="Also write the full report as JSON to this file."),
    max_pixels: str = typer.Option(None, "--max-pixels", help=MAX_PIXELS_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Check a dataset: images per class, unreadable files, duplicates, too-small classes.

    Unreadable, zero-byte and non-image files, and images over the --max-pixels limit
    (read from their header, never decoded), are excluded; identical files within a
    class are kept once; identical files under different classes (label conflicts) are
    excluded. Exits with code 2 when the dataset cannot be trained on.
    """
    from rich.console import Console

    report = check_data(data_dir, json_path=json_path, max_pixels=max_pixels, progress=not no_progress)
    console = Console()
    render_check(report.check, console)
    if json_path:
        console.print(f"report written to {json_path}")
    if not report.ok:
        raise typer.Exit(2)


@data_app.command("digits")
def digits(
    out: Path = typer.Argument(..., help="Folder to write the digit images into (one sub-folder per digit)."),
    size: int = typer.Option(32, help="Side of the written PNG images in pixels."),
) -> None:
    """Write scikit-learn's bundled handwritten digits as an image folder (offline demo data)."""
    write_digits(out, size)
    typer.echo(f"wrote 1797 digit images to {out}")
