"""`edgecls models ...`: the model registry (``edgecls.list_models``)."""

from __future__ import annotations

import typer

from edgecls.api.catalog import list_models
from edgecls.cli.app import app

models_app = typer.Typer(help="List the model families edgecls can train.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_command(
    pattern: str = typer.Argument("*", help="Shell-style wildcard, e.g. 'mobilenet*'."),
) -> None:
    """List registered models (use a name with `edgecls train --model`)."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("model")
    table.add_column("description")
    for name, description in list_models(pattern).models.items():
        table.add_row(name, description)
    Console().print(table)
