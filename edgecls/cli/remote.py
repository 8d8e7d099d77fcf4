"""What ``--host`` adds to `edgecls bench` and `edgecls run`: the ssh side, rendered here.

Not a command group of its own: ``cli/bench.py`` and ``cli/run.py`` hand over to these
functions when a host is given; ``cli/deploy.py`` shares the option texts.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from edgecls.atomic import write_text_atomic
from edgecls.bench.report import merge_records
from edgecls.bench.schema import dump_report
from edgecls.cli.bench_table import print_report
from edgecls.errors import ConfigError
from edgecls.remote.bench import RemoteBenchJob, all_passed, bench_on_hosts
from edgecls.remote.device import PrepareOptions
from edgecls.remote.host import parse_host, parse_hosts
from edgecls.remote.live import LiveSession, RemoteRun, check_local_port, free_local_port
from edgecls.present.hosts import HostProgress
from edgecls.remote.ssh import SshOptions

if TYPE_CHECKING:  # the library is imported inside the functions: `edgecls --help` stays fast
    from edgecls.remote.device import PrepareOptions

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
    if install not in INSTALL_POLICIES:
        raise ConfigError(f"--install {install!r} is not one of {', '.join(INSTALL_POLICIES)}",
                          "e.g. --install wheels for a device without internet")
    return PrepareOptions(python=remote_python, install=install)


def bench_remote(models: list[Path], options: Any, hosts: list[str], json_out: Path,
                 remote_python: str | None, install: str) -> None:
    """``edgecls bench --host``: every host in parallel, one merged JSON, exit 1 unless all passed."""
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
