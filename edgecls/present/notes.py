"""One-line messages beside the progress bars: notes, warnings and plain lines on stderr,
coloured on a terminal, plain in a log file, inline in a notebook."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

_PREFIX = {"note": "[yellow]note:[/] ", "warning": "[yellow]warning:[/] ", "line": ""}


def say(message: str, kind: str = "line", enabled: bool = True) -> None:
    """Prints ``message`` on stderr as a ``note``, a ``warning`` or a plain ``line``."""
    if enabled:
        Console(stderr=True).print(_PREFIX[kind] + escape(message), highlight=False, soft_wrap=True)
