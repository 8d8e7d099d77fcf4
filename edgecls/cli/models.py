"""`edgecls models ...`: the model registry."""

from __future__ import annotations

import typer

from edgecls.cli.app import app
from edgecls.models import MODELS, list_models

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
    for name in list_models(pattern):
        doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
        table.add_row(name, doc[0] if doc else "")
    Console().print(table)
