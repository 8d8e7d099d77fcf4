"""Shell commands of a Markdown text's ```bash blocks, to run or check the documented
commands as written: the README's tour (tests/test_readme_tour.py) and every page of the
documentation site (tests/test_docs.py) go through the same parser and ``parse_with_cli``.

    for command in markdown_commands(Path("README.md").read_text(), section="A tour"):
        command.replaced({"img.jpg": "photos/3/a.png"}).argv

A command is one logical line: backslash continuations joined, comments dropped. Its
``argv`` and leading ``NAME=value`` environment are parsed only when asked for, so a
command that is skipped may use shell syntax ``shlex`` does not read (``$(...)``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^```bash[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One documented shell command.

    Attributes:
        text: the command as written (continuations joined, comments kept out).
        section: the comment line that last preceded it in its block ("" if none).
        extra: arguments appended to ``argv`` (options a test adds, e.g. a smaller model).
    """

    text: str
    section: str = ""
    extra: tuple[str, ...] = field(default=())

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    @property
    def env(self) -> dict[str, str]:
        """Leading ``NAME=value`` assignments."""
        env = {}
        for word in self.words:
            if not _ASSIGNMENT.match(word):
                break
            name, value = word.split("=", 1)
            env[name] = value
        return env

    @property
    def argv(self) -> list[str]:
        """The program and its arguments, then ``extra``."""
        words = self.words
        return words[len(self.env):] + list(self.extra)

    def replaced(self, mapping: dict[str, str]) -> Command:
        """The command with placeholders replaced, word by word: a word equal to a key,
        or starting with a key that ends in ``/``, gets the value instead (longest key
        first, so ``runs/photos-pruned`` is not read as ``runs/photos``)."""
        words = [_replace_word(word, mapping) for word in self.words]
        return Command(shlex.join(words), self.section, self.extra)

    def with_extra(self, *args: str) -> Command:
        return Command(self.text, self.section, self.extra + tuple(args))


def _replace_word(word: str, mapping: dict[str, str]) -> str:
    for key in sorted(mapping, key=len, reverse=True):
        if word == key or (key.endswith("/") and word.startswith(key)):
            return mapping[key] + word[len(key):]
    return word


def bash_blocks(markdown: str, section: str | None = None) -> list[str]:
    """The bodies of the ```bash blocks, of one ``## section`` only when it is named."""
    if section is not None:
        markdown = section_text(markdown, section)
    return [match.group(1) for match in _FENCE.finditer(markdown)]


def section_text(markdown: str, title: str) -> str:
    """The text under the heading ``title`` up to the next heading of its level or above
    (``#`` lines inside fenced code are comments, not headings)."""
    level, kept, in_code = None, [], False
    for line in markdown.splitlines(keepends=True):
        if line.startswith("```"):
            in_code = not in_code
        depth = _heading_level(line) if not in_code else 0
        if level is None:
            if depth and line[depth:].strip() == title:
                level = depth
            continue
        if depth and depth <= level:
            break
        kept.append(line)
    if level is None:
        raise KeyError(f"no heading {title!r}")
    return "".join(kept)


def _heading_level(line: str) -> int:
    depth = len(line) - len(line.lstrip("#"))
    return depth if depth and line[depth:depth + 1] == " " else 0


def block_commands(block: str) -> list[Command]:
    """The commands of one bash block, each with the comment line before it."""
    commands, pending, section = [], "", ""
    for line in block.splitlines():
        stripped = line.strip()
        if not pending and stripped.startswith("#"):
            section = stripped.lstrip("#").strip()
            continue
        if not stripped and not pending:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        commands.append(Command(_without_comment(pending + stripped), section))
        pending = ""
    return commands


def _without_comment(text: str) -> str:
    """``text`` up to an unquoted `` #`` (a trailing comment)."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and index and text[index - 1].isspace():
            return text[:index].rstrip()
    return text.rstrip()


def markdown_commands(markdown: str, section: str | None = None) -> list[Command]:
    """Every command of the ```bash blocks of ``markdown`` (of one section if named)."""
    return [command for block in bash_blocks(markdown, section) for command in block_commands(block)]


def readme_commands(readme: Path, section: str) -> list[Command]:
    return markdown_commands(readme.read_text(), section)


def parse_with_cli(argv: list[str]) -> None:
    """Parses an ``edgecls ...`` command line the way the CLI would, down to the leaf
    command, without running it: an unknown option, a removed command or a bad value
    raises the CLI's usage error."""
    import typer

    from edgecls.cli import app

    assert argv[0] == "edgecls", f"not an edgecls command: {shlex.join(argv)}"
    command, args, context, name = typer.main.get_command(app), argv[1:], None, "edgecls"
    while hasattr(command, "get_command"):  # a group of commands, e.g. `data` of `data check`
        context = command.context_class(command, info_name=name, parent=context)
        name, args = args[0], args[1:]
        command = command.get_command(context, name)
        assert command is not None, f"no command {name!r} in {shlex.join(argv)}"
    command.make_context(name, list(args), parent=context)


def unknown_options(words: list[str]) -> list[str]:
    """The ``--options`` of a command fragment (``edgecls bench --host``, ``edgecls review
    DIR [--run RUN]``: placeholders and brackets allowed) that its command does not have;
    raises when the command path itself does not exist."""
    import typer

    from edgecls.cli import app

    assert words[0] == "edgecls", f"not an edgecls command: {shlex.join(words)}"
    command, context, rest = typer.main.get_command(app), None, words[1:]
    while hasattr(command, "get_command") and rest:
        if rest[0].isupper():  # a placeholder (`edgecls COMMAND --help`): any command
            return []
        context = command.context_class(command, info_name="edgecls", parent=context)
        command = command.get_command(context, rest[0])
        assert command is not None, f"no command {rest[0]!r} in `{shlex.join(words)}`"
        rest = rest[1:]
    known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    named = {re.split(r"[=\]|]", word.lstrip("["))[0] for word in rest if word.lstrip("[").startswith("--")}
    return sorted(named - known)
