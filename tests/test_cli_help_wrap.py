"""Command help reads well in an 80-column terminal: docstrings are reflowed, not
broken where their source lines happened to end."""

from __future__ import annotations

import re

import pytest

import edgecls.cli as cli
from edgecls.cli.app import reflow

WIDTH = 80
# Rich draws the description with one space of padding on each side.
TEXT_WIDTH = WIDTH - 2
LIST_ITEM = re.compile(r"^(?:[-*\u2022]|\d+[.)])\s")


def _command_paths(typer_app, prefix=()):
    for command in typer_app.registered_commands:
        yield (*prefix, command.name or command.callback.__name__)
    for group in typer_app.registered_groups:
        yield from _command_paths(group.typer_instance, (*prefix, group.name))


def _description(output: str) -> list[str]:
    """The lines between ``Usage:`` and the first option/argument panel."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].lstrip().startswith("╭")),
               len(lines))
    return [line.strip() for line in lines[start:end]]


def _premature_breaks(lines: list[str]) -> list[str]:
    """Lines broken although the next line's first word would have fitted after them:
    a greedy wrapper never does that, so the break came from the source text."""
    broken = []
    for line, following in zip(lines, lines[1:]):
        if not line or not following or LIST_ITEM.match(following):
            continue
        if len(line) + 1 + len(following.split()[0]) <= TEXT_WIDTH:
            broken.append(f"{line!r} / {following!r}")
    return broken


COMMAND_PATHS = [[], *map(list, _command_paths(cli.app))]


@pytest.mark.parametrize("command", COMMAND_PATHS, ids=lambda c: " ".join(c) or "edgecls")
def test_help_is_wrapped_by_the_terminal_not_the_docstring(command):
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, [*command, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    assert max(map(len, result.output.splitlines())) <= WIDTH
    lines = _description(result.output)
    assert any(lines), result.output
    assert _premature_breaks(lines) == [], result.output


def test_every_command_is_checked():
    assert len(COMMAND_PATHS) >= 15  # the walk finds the commands of the sub-apps too
    assert ["data", "check"] in COMMAND_PATHS


def test_reflow_keeps_paragraphs_lists_and_verbatim_blocks():
    text = ("First line\n    of the summary.\n\n"
            "A paragraph broken\nin the source.\nStill the same one.\n\n"
            "Steps:\n- one thing\n  that goes on\n- another\n1. numbered\n\n"
            "\b\nkept  as\nis")
    assert reflow(text) == ("First line of the summary.\n\n"
                            "A paragraph broken in the source. Still the same one.\n\n"
                            "Steps:\n- one thing that goes on\n- another\n1. numbered\n\n"
                            "\b\nkept  as\nis")
