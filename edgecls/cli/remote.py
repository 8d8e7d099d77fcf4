"""What ``--host`` adds to `edgecls bench` and `edgecls run`: the ssh side, rendered here.

Not a command group of its own: ``cli/bench.py`` and ``cli/run.py`` hand over to these
functions when a host is given; ``cli/deploy.py`` shares the option texts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from edgecls.errors import ConfigError

if TYPE_CHECKING:  # the library is imported inside the functions: `edgecls --help` stays fast
    from edgecls.remote.device import PrepareOptions
    from edgecls.remote.host import HostSpec

SSH_CONFIG_ENV = "EDGECLS_SSH_CONFIG"  # read by edgecls.remote.ssh
INSTALL_POLICIES = ("index", "wheels", "never")
HOST_HELP = ("Device to run on over ssh: user@host[:port] or an alias from ~/.ssh/config (key or agent "
             f"authentication, known host keys only; ${SSH_CONFIG_ENV} names another ssh config file).")
REMOTE_PYTHON_HELP = ("Python on the device to use as it is (must have this edgecls version); default: "
                      "~/.edgecls/venv, else python3 there, else a new ~/.edgecls/venv.")
INSTALL_HELP = ("When the device has no usable edgecls: 'index' (pip there), 'wheels' (this machine downloads "
                "wheels for the device's platform and copies them: no internet needed there), 'never'.")


def prepare_options(remote_python: str | None, install: str) -> PrepareOptions:
    """Checks ``--install`` and builds the preparation options."""
    from edgecls.remote.device import PrepareOptions

    if install not in INSTALL_POLICIES:
        raise ConfigError(f"--install {install!r} is not one of {', '.join(INSTALL_POLICIES)}",
                          "e.g. --install wheels for a device without internet")
    return PrepareOptions(python=remote_python, install=install)


def bench_remote(models: list[Path], options: Any, hosts: list[str], json_out: Path,
                 remote_python: str | None, install: str) -> None:
    """``edgecls bench --host``: every host in parallel, one merged JSON, exit 1 unless all passed."""
    from edgecls.atomic import write_text_atomic
    from edgecls.bench.render_table import print_report
    from edgecls.bench.report import merge_records
    from edgecls.bench.schema import dump_report
    from edgecls.remote.bench import RemoteBenchJob, all_passed, bench_on_hosts
    from edgecls.remote.host import parse_hosts
    from edgecls.remote.ssh import SshOptions

    job = RemoteBenchJob(models, options, parse_hosts(hosts), SshOptions(), prepare_options(remote_python, install))
    console = Console()
    with HostProgress(console, job.hosts) as progress:
        report = bench_on_hosts(job, say=progress.update)
    write_text_atomic(json_out, dump_report(report))
    if report["records"]:
        print_report(merge_records([report], check_labels=False), console)
    else:
        for host in report["hosts"]:
            console.print(f"[red]host {escape(host['host'])}: {host['status']}: {escape(str(host['reason']))}[/]")
    for host in report["hosts"]:
        if host.get("hint"):
            console.print(f"[yellow]hint ({escape(host['host'])}):[/] {escape(host['hint'])}", soft_wrap=True)
    console.print(f"wrote {json_out}")
    if not all_passed(report):
        raise typer.Exit(1)


class HostProgress:
    """One spinner line per host showing its current step."""

    def __init__(self, console: Console, hosts: list[HostSpec]) -> None:
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  console=console, transient=True)
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
