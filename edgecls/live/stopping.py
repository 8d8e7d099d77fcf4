"""Clean stops of a long run: SIGINT, SIGTERM and SIGHUP all end ``run_loop`` the way
Ctrl+C does (outputs finalized, summary returned), instead of killing the process.

``systemctl stop`` and ``docker stop`` send SIGTERM; closing a terminal or an SSH session
sends SIGHUP. The handler only records the signal while the loop is classifying or
delivering a frame (the loop checks it after each frame), so finalizing a video is never
cut short; while the loop waits for the source (a camera that delivers nothing, a
reconnect backoff) it raises ``KeyboardInterrupt`` once to end the wait. A second
Ctrl+C forces the stop at once (for a finalization that hangs).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopOnSignals:
    """Context manager: while active, SIGINT/SIGTERM/SIGHUP request a stop.

    Outside the main thread (where Python cannot install handlers) it does nothing and
    the process keeps its previous signal behaviour; a signal the process ignores (SIGHUP
    under ``nohup``) stays ignored.

    Attributes:
        received: the name of the first stop signal received (e.g. "SIGTERM"), else None.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._waiting = False
        self._interrupts = 0
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.received is not None

    def __enter__(self) -> StopOnSignals:  # noqa: PYI034 - typing.Self needs Python 3.11
        if threading.current_thread() is threading.main_thread():
            for signum in _STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. SIGHUP under nohup stays ignored
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def wait_for(self, fn: Callable[..., T], *args: Any) -> T:
        """Calls ``fn(*args)`` (a blocking wait); a stop signal during it raises KeyboardInterrupt."""
        self._waiting = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            return fn(*args)
        finally:
            self._waiting = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        forced = name == "SIGINT" and self._interrupts > 0
        self._interrupts += name == "SIGINT"
        if self.received is None:
            self.received = name
        if self._waiting or forced:
            self._waiting = False
            raise KeyboardInterrupt
