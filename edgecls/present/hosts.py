"""Progress of work on several ssh hosts at once: one spinner line per host."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from edgecls.present.progress import is_live

if TYPE_CHECKING:
    from edgecls.remote.host import HostSpec


class HostProgress:
    """One spinner line per host showing its current step."""

    def __init__(self, console: Console | None, hosts: list[HostSpec]) -> None:
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=console or Console(), transient=True)
        self._tasks = {host.text: self._progress.add_task(escape(host.text), total=None) for host in hosts}
        self._lock = threading.Lock()

    def update(self, host: HostSpec, message: str) -> None:
        with self._lock:
            self._progress.update(self._tasks[host.text], description=f"{escape(host.text)}: {escape(message)}")

    def __enter__(self) -> HostProgress:  # noqa: PYI034
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)


@contextlib.contextmanager
def host_progress(hosts: list[HostSpec], console: Console | None = None,
                  enabled: bool = True) -> Iterator[Callable[[HostSpec, str], None]]:
    """A ``HostProgress`` yielding its ``update`` callback; ``enabled=False`` or a console
    that is neither a terminal nor a notebook gives a callback that draws nothing."""
    console = console or Console()
    if not enabled or not is_live(console):
        yield lambda host, message: None
        return
    with HostProgress(console, hosts) as progress:
        yield progress.update
