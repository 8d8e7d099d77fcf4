"""`edgecls targets list|show`: the device profiles in targets/*.yaml
(``edgecls.list_targets``, ``edgecls.show_target``).

Runtime-only imports, so this works on a device without TensorFlow.
"""

from __future__ import annotations

import typer

from edgecls.api.catalog import TARGET_COLUMNS, list_targets, show_target
from edgecls.cli.app import app

targets_app = typer.Typer(help="Device target profiles (targets/*.yaml).", no_args_is_help=True)
app.add_typer(targets_app, name="targets")


@targets_app.command("list")
def targets_list() -> None:
    """List the device profiles: format, precision, backend, device."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in TARGET_COLUMNS:
        table.add_column(column, no_wrap=True)
    for row in list_targets().rows():
        table.add_row(*row)
    Console().print(table)


@targets_app.command("show")
def targets_show(name: str = typer.Argument(..., help="Target name, e.g. raspberry-pi-5.")) -> None:
    """Show one device profile, including the pip line and the sources of its facts."""
    typer.echo(show_target(name).to_yaml())
