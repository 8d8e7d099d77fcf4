"""Command-line entry point. Each command module is thin: it builds a config and calls
the library. Heavy frameworks are imported inside the commands, never here, so that
``edgecls run`` works on a device without TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

from edgecls.cli.app import app
from edgecls.errors import EdgeclsError

# Command groups, one module each; a module that is absent or fails to import for a
# missing optional dependency must not take the whole CLI down.
_COMMAND_MODULES = ("data", "models", "train", "export", "run", "bench")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"edgecls.cli.{_name}")


def main() -> None:
    """Runs the CLI; user errors become one line on stderr and exit code 2."""
    try:
        app()
    except EdgeclsError as exc:
        _print_user_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def _print_user_error(exc: EdgeclsError) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False)
    console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if exc.hint:
        console.print(f"[yellow]hint:[/] {escape(exc.hint)}", soft_wrap=True)
