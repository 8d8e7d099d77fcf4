"""``edgecls.deploy`` (``edgecls deploy``: a model running at boot on a device) and
``edgecls.collect`` (``edgecls collect``: frames kept on devices pulled into an inbox),
both over ssh; each returns a result object with the status per host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.api import html
from edgecls.api.benching import prepare_options
from edgecls.present.hosts import host_progress
from edgecls.present.progress import status_line
from edgecls.remote.collect import DEFAULT_DEVICE_DIR, CollectJob, collect_from_hosts
from edgecls.remote.deploy import DeployJob, DeployResult, install_commands
from edgecls.remote.deploy import deploy as run_deploy
from edgecls.remote.host import parse_host, parse_hosts
from edgecls.remote.inbox import Inbox
from edgecls.remote.parallel import HostOutcome


@dataclass
class Deployment:
    """What ``deploy`` found and did on the device (``edgecls deploy`` prints the same)."""

    host: str
    service: bool
    result: DeployResult
    status: str = "passed"  # a failed deploy raises instead

    @property
    def unit(self) -> str:
        """The systemd unit text."""
        return self.result.unit

    @property
    def install_commands(self) -> list[str]:
        """Without ``service``: the commands that install the unit on the device."""
        return [] if self.service else install_commands(self.result)

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        replaced = r.replacement.previous.get("model") if r.replacement and r.replacement.previous else None
        return {"host": self.host, "status": self.status, "environment": r.environment.describe(),
                "copied": list(r.copied), "unit_name": r.unit_name, "unit": r.unit, "service": self.service,
                "actions": list(r.actions), "changed": r.changed, "replaces": replaced,
                "verdict": r.replacement.verdict if r.replacement else None}

    def _repr_html_(self) -> str:
        d = self.to_dict()
        rows = [["environment", d["environment"]], ["model", ", ".join(d["copied"]) or "unchanged"],
                ["replaces", d["replaces"]], ["unit", d["unit_name"]],
                ["service", "; ".join(d["actions"]) or ("unchanged" if self.service else "not installed")]]
        unit = f"<pre>{html.escape(self.unit)}</pre>" if not self.service else ""
        return html.STYLE + html.table(["", ""], rows, caption=f"deploy on {self.host}: {self.status}") + unit


@dataclass
class CollectResult:
    """One outcome per host (``passed``, ``failed``, ``unreachable``), in the order given."""

    outcomes: list[HostOutcome]
    inbox: Path
    keep_on_device: bool = False

    @property
    def passed(self) -> bool:
        return all(outcome.passed for outcome in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"inbox": str(self.inbox), "hosts": [_outcome_row(o) for o in self.outcomes]}

    def _repr_html_(self) -> str:
        rows, classes = [], []
        for o in self.outcomes:
            pulled = o.value.describe(self.keep_on_device) if o.passed else _reason(o)
            rows.append([o.host.text, o.status, pulled, o.hint, o.seconds])
            classes.append("" if o.passed else "failed")
        return html.STYLE + html.table(["host", "status", "frames", "hint", "seconds"], rows, classes,
                                       caption=f"collect into {self.inbox}")


def deploy(model: str | Path, host: str, target: str | None = None, source: str | None = None,
           service: bool = False, name: str | None = None, root: str = "/",
           comparison: str | Path | None = None, force: bool = False, remote_python: str | None = None,
           install: str = "index", progress: bool = True) -> Deployment:
    """Copies ``model`` to ``host`` over ssh, prepares its runtime and writes the systemd
    unit that runs it headless at boot; with ``service`` installs, enables and (re)starts
    it. The parameters are ``edgecls deploy``'s options.

    Args:
        progress: a spinner while the device is set up.

    Raises:
        EdgeclsError: the host could not be reached or set up (``RemoteError``), a bad
            option, or a model worse than the one it replaces (without ``force``).
    """
    job = DeployJob(model=Path(model), host=parse_host(host), target=target, source=source, service=service,
                    root=root, name=name, comparison=Path(comparison) if comparison is not None else None,
                    force=force, prepare=prepare_options(remote_python, install))
    with status_line(f"{host}: connecting, checking the environment, copying the model...", enabled=progress):
        result = run_deploy(job)
    return Deployment(host, service, result)


def collect(host: str | Sequence[str], into: str | Path, device_dir: str = DEFAULT_DEVICE_DIR,
            keep_on_device: bool = False, timeout: float = 1800.0, progress: bool = True) -> CollectResult:
    """Pulls the frames ``run --collect`` kept on one or many devices into the inbox
    ``into``, hosts in parallel; the parameters are ``edgecls collect``'s options
    (``device_dir`` is ``--from``).

    Args:
        progress: one spinner line per host.

    Raises:
        EdgeclsError: a bad host spec or inbox (a host failing is its outcome, not an error).
    """
    hosts = parse_hosts([host] if isinstance(host, str) else list(host))
    job = CollectJob(hosts=hosts, inbox=Inbox(into), device_dir=device_dir, keep_on_device=keep_on_device,
                     timeout_s=timeout)
    with host_progress(hosts, enabled=progress) as say:
        outcomes = collect_from_hosts(job, say=say)
    return CollectResult(outcomes, Path(into), keep_on_device)


def _reason(outcome: HostOutcome) -> str:
    return str(outcome.reason).removeprefix(f"{outcome.host.text}: ").removeprefix(f"{outcome.status}: ")


def _outcome_row(outcome: HostOutcome) -> dict[str, Any]:
    row = {"host": outcome.host.text, "status": outcome.status, "seconds": outcome.seconds}
    if outcome.passed:
        row.update(vars(outcome.value))
    else:
        row.update(reason=_reason(outcome), hint=outcome.hint)
    return row
