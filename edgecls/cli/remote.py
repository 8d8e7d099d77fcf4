"""What ``--host`` adds to `edgecls bench` and ``--remote`` to `edgecls run`: option texts
and the rendering of remote results.

Not a command group of its own: ``cli/bench.py`` renders a remote bench with these
functions; ``cli/run.py`` and ``cli/deploy.py`` share the option texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from edgecls.cli.bench_table import print_report

if TYPE_CHECKING:
    from edgecls.api.results import BenchResult

SSH_CONFIG_ENV = "EDGECLS_SSH_CONFIG"  # read by edgecls.remote.ssh
HOST_HELP = ("Device to run on over ssh: user@host[:port] or an alias from ~/.ssh/config (key or agent "
             f"authentication, known host keys only; ${SSH_CONFIG_ENV} names another ssh config file).")
REMOTE_PYTHON_HELP = ("Python on the device to use as it is (must have this very edgecls build); default: "
                      "~/.edgecls/venv, else python3 there, else a new ~/.edgecls/venv.")
INSTALL_HELP = ("When the device lacks this edgecls build, it gets a wheel of it built here, and its dependencies: "
                "'index' (from the device's package index, else as with 'wheels'), 'wheels' (this machine "
                "downloads them for the device's platform and copies them: no internet needed there), 'never'.")


def print_remote_bench(result: BenchResult, console: Console) -> None:
    """What ``edgecls bench --host`` prints: the table of the hosts' records, or each
    host's failure, then the hosts' hints."""
    if result.records:
        print_report(result.merged, console)
    else:
        for host in result.merged.hosts:
            console.print(f"[red]host {escape(host['host'])}: {host['status']}: {escape(str(host['reason']))}[/]")
    for host in result.merged.hosts:
        if host.get("hint"):
            console.print(f"[yellow]hint ({escape(host['host'])}):[/] {escape(host['hint'])}", soft_wrap=True)


REMOTE_RUN_HELP = ("Run on this device over ssh (user@host[:port] or an ~/.ssh/config alias), JSON lines "
                   "streamed back here; --source, --jsonl and --save are paths on the device. With --serve "
                   "the stream is forwarded to http://127.0.0.1:PORT here. (--host is the --serve address.)")
