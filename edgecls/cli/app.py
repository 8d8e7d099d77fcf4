"""The typer application that every command module adds its commands to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="edgecls",
    help=(
        "From a folder of labelled images to a fast, validated INT8 image classifier "
        "on Raspberry Pi, Jetson or CPU.\n\n"
        "Typical flow: edgecls data check DIR -> edgecls train -> edgecls export "
        "-> edgecls run / edgecls bench -> edgecls report."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
