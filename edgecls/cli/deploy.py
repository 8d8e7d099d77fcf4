"""`edgecls deploy`: set a device up over ssh to run a model headless at boot."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecls.cli.app import app
from edgecls.cli.options import NO_PROGRESS_HELP
from edgecls.cli.remote import HOST_HELP, INSTALL_HELP, REMOTE_PYTHON_HELP


@app.command("deploy")
def deploy(
    model: Path = typer.Argument(..., help="Model file: .tflite, .onnx or OpenVINO .xml (with its .bin)."),
    host: str = typer.Option(..., "--host", help=HOST_HELP),
    target: str = typer.Option(None, help="Device profile (`edgecls targets list`): its backend picks the "
                               "edgecls\\[runtime-...] extra installed there, and `edgecls run` applies it."),
    source: str = typer.Option(None, "--source", "-s", help="Camera or stream on the device "
                               "(default: the target's camera, else 0)."),
    service: bool = typer.Option(False, "--service", help="Install, enable and (re)start the systemd unit "
                                 "(sudo -n when not root); without it the unit is printed."),
    name: str = typer.Option(None, help="systemd unit name (default: edgecls-<model name>)."),
    root: str = typer.Option("/", help="Install the unit under this root on the device, e.g. a mounted "
                             "SD-card image (systemctl --root)."),
    comparison: Path = typer.Option(None, "--comparison", help="A report of `edgecls compare MODEL OLD "
                                    "--json FILE` judging this model against the one the device runs. "
                                    "Without it a comparison runs when that model's file or run is here."),
    force: bool = typer.Option(False, "--force", help="Deploy even when the comparison says the model is "
                               "worse than the one the device runs."),
    remote_python: str = typer.Option(None, help=REMOTE_PYTHON_HELP),
    install: str = typer.Option("index", help=INSTALL_HELP),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Copy a model to a device, prepare its runtime, and run it headless at boot (systemd).

    Idempotent: the model is copied only when its SHA-256 changed, the environment is reused
    when it already has this edgecls and the runtime, and the unit is rewritten (and the
    service restarted) only when something changed. JSON lines go to the journal
    (`journalctl -u edgecls-NAME`).

    A model replacing another one in the unit is compared with it first (`edgecls compare`):
    a worse one is refused (--force overrides), and the device's deployed.json records
    which model replaced which, with the verdict.
    """
    from rich.console import Console
    from rich.markup import escape

    from edgecls.api.devices import deploy as deploy_model

    deployment = deploy_model(model, host, target=target, source=source, service=service, name=name, root=root,
                              comparison=comparison, force=force, remote_python=remote_python, install=install,
                              progress=not no_progress)
    result = deployment.result
    console = Console(highlight=False)
    console.print(f"{escape(host)}: {escape(result.environment.describe())}")
    console.print(f"model: {'copied ' + ', '.join(result.copied) if result.copied else 'unchanged'}")
    replacement = result.replacement
    if replacement is not None and replacement.replaces and replacement.previous is not None:
        forced = " (forced)" if replacement.forced and replacement.verdict == "worse" else ""
        console.print(f"replaces {escape(str(replacement.previous.get('model')))}{forced}: "
                      f"{escape(replacement.summary or '')}", soft_wrap=True)
    if not service:
        console.print(f"\n[bold]{escape(result.unit_name)}[/]\n{escape(result.unit)}", soft_wrap=True)
        console.print("to install it on the device (or re-run with --service):")
        for command in deployment.install_commands:
            console.print(f"  {escape(command)}", soft_wrap=True)
        return
    for action in result.actions:
        console.print(f"service: {escape(action)}")
    if not result.changed:
        console.print(f"{escape(result.unit_name)}: up to date, nothing changed")
