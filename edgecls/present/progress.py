"""Progress bars fed by the library's callbacks, one kind per callback shape:

- ``fraction_bar``: ``(message, fraction done)`` (export);
- ``step_bar``: ``(message)``, each call a new step of a known count (bench);
- ``count_bar``: ``(done, total)`` (dataset check).

Each is a context manager yielding the callback. ``enabled=False`` or a console that is
neither a terminal nor a notebook (``> export.log``, where rich would leave blank lines)
gives a callback that draws nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


def is_live(console: Console) -> bool:
    """Whether bars can be drawn: a real terminal, or a Jupyter notebook."""
    return console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal)


def _bars(console: Console | None, enabled: bool, *columns: Any) -> Progress | None:
    console = console or Console(stderr=True)
    if not enabled or not is_live(console):
        return None
    return Progress(TextColumn("{task.description}"), BarColumn(), *columns, TimeElapsedColumn(),
                    console=console, transient=True)


@contextlib.contextmanager
def fraction_bar(title: str, console: Console | None = None,
                 enabled: bool = True) -> Iterator[Callable[[str, float], None]]:
    """A bar over the fraction of the work done; each message replaces the description."""
    bar = _bars(console, enabled)
    if bar is None:
        yield lambda message, fraction: None
        return
    with bar:
        task = bar.add_task(title, total=1.0)
        yield lambda message, fraction: bar.update(task, description=message, completed=fraction)


@contextlib.contextmanager
def step_bar(title: str, steps: int, console: Console | None = None,
             enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A bar over ``steps`` steps: each call finishes the step before and names the next."""
    bar = _bars(console, enabled, TextColumn("{task.completed}/{task.total}"))
    if bar is None:
        yield lambda message: None
        return
    started = [0]

    def tick(message: str) -> None:
        if started[0]:
            bar.advance(task)
        started[0] += 1
        bar.update(task, description=f"{title} {message}")

    with bar:
        task = bar.add_task(title, total=steps)
        yield tick


@contextlib.contextmanager
def count_bar(title: str, console: Console | None = None,
              enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A bar over ``done`` of ``total`` items, the total known once work starts."""
    bar = _bars(console, enabled, TextColumn("{task.completed}/{task.total}"))
    if bar is None:
        yield lambda done, total: None
        return
    with bar:
        task = bar.add_task(title, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextlib.contextmanager
def rich_console_muted() -> Iterator[None]:
    """Silences rich's global console for the call: NNCF (3.4) draws its progress bars
    ("Statistics collection", "Applying Fast Bias correction", accuracy control's
    "Collecting outputs"...) on it and has no switch to turn them off; edgecls' own
    bars and tables use their own consoles, which stay as they are."""
    import rich

    shared = rich.get_console()
    previous, shared.quiet = shared.quiet, True
    try:
        yield
    finally:
        shared.quiet = previous


@contextlib.contextmanager
def status_line(message: str, console: Console | None = None,
                enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A spinner with ``message``; each call replaces the message (work of unknown length)."""
    console = console or Console()
    if not enabled or not is_live(console):
        yield lambda text: None
        return
    with console.status(message) as status:
        yield lambda text: status.update(text)
