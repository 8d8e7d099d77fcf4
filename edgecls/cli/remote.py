"""What ``--host`` adds to `edgecls bench` and `edgecls run`: the ssh side, rendered here.

Not a command group of its own: ``cli/bench.py`` and ``cli/run.py`` hand over to these
functions when a host is given; ``cli/deploy.py`` shares the option texts.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from edgecls.api.benching import prepare_options
from edgecls.cli.bench_table import print_report
from edgecls.remote.host import parse_host
from edgecls.remote.live import LiveSession, RemoteRun, check_local_port, free_local_port

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


# `edgecls run` options that never go to the device: the ssh side's own, the model and labels
# (sent as files), and credentials (the device serves on its loopback through the forward, and
# a secret on a command line would show in its process list).
_LOCAL_ONLY = {"model", "remote", "remote_python", "labels", "token", "basic_auth", "headless", "serve", "port"}
REMOTE_RUN_HELP = ("Run on this device over ssh (user@host[:port] or an ~/.ssh/config alias), JSON lines "
                   "streamed back here; --source, --jsonl and --save are paths on the device. With --serve "
                   "the stream is forwarded to http://127.0.0.1:PORT here. (--host is the --serve address.)")


def run_remote(ctx: typer.Context, model: Path, remote: str, remote_python: str | None) -> int:
    """``edgecls run --remote``: the loop on the device, its output here; returns the exit code."""
    params = ctx.params
    serve_port = None
    if params.get("serve"):
        serve_port = params.get("port") or free_local_port()
        check_local_port(serve_port)
    args = device_run_args(ctx)
    if not params.get("jsonl"):
        args.append("--headless")
    job = RemoteRun(model=model, host=parse_host(remote), args=args, labels=params.get("labels"),
                    serve_port=serve_port, prepare=prepare_options(remote_python, "index"))
    session = LiveSession(job, sys.stdout, sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` ends ssh, and the device's run
    try:
        session.start()
        return session.relay()
    finally:
        session.stop()


def device_run_args(ctx: typer.Context) -> list[str]:
    """The options given to this `edgecls run`, spelled for the device's `edgecls run`."""
    args: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if (param.param_type_name != "option" or param.name in _LOCAL_ONLY or value is None
                or value == param.default):
            continue
        if param.is_flag:
            args += [param.opts[0]] if value else list(param.secondary_opts[:1])
        else:
            args += [param.opts[0], str(value)]
    return args
