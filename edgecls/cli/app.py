"""The typer application that every command module adds its commands to."""

from __future__ import annotations

import inspect
import re

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

# A line that starts a list item keeps its line break: "- x", "* x", "1. x", "2) x".
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s")


def reflow(text: str) -> str:
    """A docstring as help text that the terminal wraps: the line breaks inside each
    paragraph become spaces, except before list items; paragraphs (blank-line
    separated) stay apart, and a paragraph starting with ``\\b`` is kept verbatim
    (click's no-rewrap marker).

    typer's "rich" mode keeps every single line break of a docstring after its first
    paragraph, so an 88-column docstring breaks mid-sentence in an 80-column terminal.
    """
    paragraphs = re.split(r"\n[ \t]*\n", inspect.cleandoc(text))
    return "\n\n".join(p if p.startswith("\b") else _join_lines(p) for p in paragraphs)


def _join_lines(paragraph: str) -> str:
    joined: list[str] = []
    for line in paragraph.splitlines():
        if joined and not _LIST_ITEM.match(line):
            joined[-1] = f"{joined[-1]} {line.strip()}"
        else:
            joined.append(line.rstrip())
    return "\n".join(joined)


def reflow_help(typer_app: typer.Typer) -> None:
    """Reflows the help of every command and command group of ``typer_app`` (see
    ``reflow``); call it once all command modules are imported."""
    if typer_app.info.help:
        typer_app.info.help = reflow(str(typer_app.info.help))
    for command in typer_app.registered_commands:
        text = command.help or inspect.getdoc(command.callback)
        if text:
            command.help = reflow(text)
    for group in typer_app.registered_groups:
        if group.help:
            group.help = reflow(str(group.help))
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)
