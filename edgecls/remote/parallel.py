"""One thread per host: a slow or failing host never holds up or takes down the others.

Each host's work runs in its own daemon thread and ends in a ``HostOutcome``: ``passed``
with the work's value, ``failed`` with the reason (and a hint), or ``unreachable``. Every
ssh call inside has its own timeout; ``timeout_s`` bounds a host as a whole, after which it
is reported ``failed`` without waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecls.errors import EdgeclsError
from edgecls.remote.host import HostSpec
from edgecls.remote.ssh import STATUS_FAILED, STATUS_PASSED, RemoteError


@dataclass
class HostOutcome:
    """How one host ended."""

    host: HostSpec
    status: str = STATUS_FAILED
    reason: str | None = None
    hint: str | None = None
    seconds: float = 0.0
    value: Any = None

    @property
    def passed(self) -> bool:
        return self.status == STATUS_PASSED


def run_on_hosts(hosts: list[HostSpec], work: Callable[[HostSpec], Any], timeout_s: float) -> list[HostOutcome]:
    """Runs ``work(host)`` for every host in parallel; outcomes in the order of ``hosts``."""
    outcomes = [HostOutcome(host) for host in hosts]
    threads = [threading.Thread(target=_run_one, args=(work, outcome), daemon=True, name=f"edgecls-{host.text}")
               for host, outcome in zip(hosts, outcomes)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for index, thread in enumerate(threads):
        thread.join(max(0.0, timeout_s - (time.monotonic() - started)))
        if thread.is_alive():  # left running in the background; its late result is ignored
            outcomes[index] = HostOutcome(hosts[index], STATUS_FAILED, f"{hosts[index].text}: gave up after "
                                          f"{timeout_s:.0f} s", seconds=round(time.monotonic() - started, 2))
    return outcomes


def _run_one(work: Callable[[HostSpec], Any], outcome: HostOutcome) -> None:
    started = time.monotonic()
    try:
        outcome.value = work(outcome.host)
        outcome.status = STATUS_PASSED
    except RemoteError as exc:
        outcome.status, outcome.reason, outcome.hint = exc.status, exc.message, exc.hint
    except EdgeclsError as exc:
        outcome.reason, outcome.hint = f"{outcome.host.text}: {exc.message}", exc.hint
    except Exception as exc:  # noqa: BLE001 -- a bug or OS error on one host must not end the others
        outcome.reason = f"{outcome.host.text}: {type(exc).__name__}: {exc}"
    finally:
        outcome.seconds = round(time.monotonic() - started, 2)
