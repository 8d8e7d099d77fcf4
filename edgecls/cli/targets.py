"""`edgecls targets list|show`: the device profiles in targets/*.yaml.

Runtime-only imports, so this works on a device without TensorFlow.
"""

from __future__ import annotations

import typer

from edgecls.cli.app import app
from edgecls.runtime.targets import list_targets, load_target

targets_app = typer.Typer(help="Device target profiles (targets/*.yaml).", no_args_is_help=True)
app.add_typer(targets_app, name="targets")


@targets_app.command("list")
def targets_list() -> None:
    """List the device profiles: format, precision, backend, device."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("name", "format", "precision", "backend", "device / providers"):
        table.add_column(column, no_wrap=True)
    for t in list_targets():
        where = ",".join(t.execution_providers) if t.execution_providers else t.device
        table.add_row(t.name, t.format, t.precision, t.backend, where)
    Console().print(table)


@targets_app.command("show")
def targets_show(name: str = typer.Argument(..., help="Target name, e.g. raspberry-pi-5.")) -> None:
    """Show one device profile, including the pip line and the sources of its facts."""
    import yaml

    typer.echo(yaml.safe_dump(load_target(name).as_dict(), sort_keys=False, width=100).rstrip())
