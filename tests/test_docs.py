"""The documentation site cannot drift from the code: every command its pages show parses
with the real CLI (the same runner as the README's tour), every option named in running
text exists, Python blocks compile, and ``mkdocs build --strict`` passes (a broken link,
a missing page or an API docstring that does not match its signature fails it)."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.readme_tour import markdown_commands, parse_with_cli, unknown_options

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))
# Commands of other programs the pages show (installs, the tests, device scripts), by prefix.
OTHER_PROGRAMS = ("python3 -m venv", "pip install", ".venv/bin/", "sudo scripts/", "nice .venv/bin/")
INLINE_COMMAND = re.compile(r"(?<!`)`(edgecls [^`]+)`(?!`)")
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _edgecls_argv(text: str) -> list[str] | None:
    """The ``edgecls ...`` words of a shell command, after leading ``NAME=value`` words
    (whose value may be a ``$(...)`` that shlex splits); None for another program."""
    words = shlex.split(text, comments=True)
    if words[0] == "edgecls":
        return words
    if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) and "edgecls" in words:
        return words[words.index("edgecls"):]
    return None


def test_the_site_has_its_pages() -> None:
    names = {page.name for page in PAGES}
    assert {"index.md", "getting-started.md", "cli.md", "api.md", "formats.md", "measured.md",
            "architecture.md", "gate.md", "pruning.md"} <= names


def test_every_shell_command_of_the_docs_parses_with_the_real_command_line() -> None:
    parsed = 0
    for page in PAGES:
        for command in markdown_commands(page.read_text(encoding="utf-8")):
            argv = _edgecls_argv(command.text)
            if argv is None:
                assert command.text.startswith(OTHER_PROGRAMS), f"{page.name}: `{command.text}` is " \
                    "neither an edgecls command nor another program's this test knows"
                continue
            parse_with_cli(argv)
            parsed += 1
    assert parsed >= 15  # the tour on the getting-started page at least


def test_the_getting_started_tour_is_the_readme_tour() -> None:
    """The slow README tour test runs these commands; the page must show the same ones."""
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_commands(page, "A tour") == markdown_commands(readme, "A tour")


def test_every_option_the_docs_name_in_running_text_exists() -> None:
    problems = []
    for page in PAGES:
        for match in INLINE_COMMAND.finditer(page.read_text(encoding="utf-8")):
            missing = unknown_options(shlex.split(match.group(1)))
            problems += [f"{page.name}: `{match.group(1)}` names {option}" for option in missing]
    assert not problems, "\n".join(problems)


def test_an_option_that_does_not_exist_is_caught() -> None:
    assert unknown_options(shlex.split("edgecls export RUN [--no-such-option X]")) == ["--no-such-option"]
    with pytest.raises(AssertionError, match="no command 'exprot'"):
        unknown_options(["edgecls", "exprot", "--formats"])


def test_every_python_block_of_the_docs_compiles() -> None:
    for page in PAGES:
        for block in PYTHON_BLOCK.findall(page.read_text(encoding="utf-8")):
            ast.parse(block, filename=str(page))


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    """About 10 s: the API reference imports nothing, the CLI reference imports the CLI."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "search" / "search_index.json").is_file()
    cli_page = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "edgecls export" in cli_page and "--max-drop" in cli_page


def test_the_readme_fits_two_screens_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]+)", readme)
    assert len(links) >= 15 and all((ROOT / link).is_file() for link in links), links
