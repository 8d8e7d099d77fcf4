"""`edgecls collect --host`: pull the frames devices kept with `run --collect` into an inbox."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecls.cli.app import app
from edgecls.cli.options import NO_PROGRESS_HELP
from edgecls.cli.remote import SSH_CONFIG_ENV

HOST_HELP = ("Device to pull from over ssh: user@host[:port] or an alias from ~/.ssh/config (key or agent "
             f"authentication, known host keys only; ${SSH_CONFIG_ENV} names another ssh config file). "
             "Repeat for several devices.")
FROM_HELP = ("The folder given to `edgecls run --collect` on the devices (relative to the login's home "
             "unless absolute).")


@app.command("collect")
def collect(
    host: list[str] = typer.Option(..., "--host", help=HOST_HELP),
    into: Path = typer.Option(..., "--into", help="Inbox folder here (created if missing); "
                              "`edgecls review` labels what is in it."),
    device_dir: str = typer.Option("collect", "--from", help=FROM_HELP),
    keep_on_device: bool = typer.Option(False, "--keep-on-device", help="Leave the pulled frames on the "
                                        "devices (by default each frame that arrived intact is removed there)."),
    timeout: float = typer.Option(1800.0, help="Seconds one host may take in all."),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Pull the frames kept by `edgecls run --collect` from one or many devices into an inbox.

    Hosts are pulled in parallel, each on its own: one unreachable host does not stop the
    others. Each frame is checked against its SHA-256 on the device; only frames that
    arrived intact are imported (named by content, so a frame is never imported twice) and
    then removed from the device. One line per host; exit code 1 unless every host passed.
    """
    from rich.console import Console
    from rich.markup import escape

    from edgecls.api.devices import collect as collect_frames

    result = collect_frames(host, into, device_dir=device_dir, keep_on_device=keep_on_device, timeout=timeout,
                            progress=not no_progress)
    console = Console(highlight=False)
    for outcome in result.outcomes:
        if outcome.passed:
            console.print(f"{escape(outcome.host.text)}: passed: {outcome.value.describe(keep_on_device)}")
            continue
        reason = str(outcome.reason).removeprefix(f"{outcome.host.text}: ").removeprefix(f"{outcome.status}: ")
        console.print(f"[red]{escape(outcome.host.text)}: {outcome.status}:[/] {escape(reason)}", soft_wrap=True)
        if outcome.hint:
            console.print(f"[yellow]hint:[/] {escape(outcome.hint)}", soft_wrap=True)
    if not result.passed:
        raise typer.Exit(1)
