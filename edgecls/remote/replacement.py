"""Deploying over an older model: refuse a worse one, and record which replaced which.

Each deploy leaves ``deployed.json`` beside the model on the device (``DEPLOY_RECORD``):
the model's name and SHA-256, where it came from on this machine (the file and its
training run) and what it replaced, with the comparison's verdict. The next deploy of
another model to the same unit reads it and judges the replacement with
``edgecls.export.compare`` (the export gate's statistics): from a saved comparison
(``edgecls compare NEW OLD --json``), or by running one when the old model's file or
run is still on this machine. A ``worse`` verdict refuses the deploy unless forced; an
old model nobody can find is replaced with a note saying it was not compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgecls.digest import file_sha256
from edgecls.errors import EdgeclsError
from edgecls.export.compare import compare_paths, load_comparison
from edgecls.remote.ssh import SshTransport, shell_path
from edgecls.rundir import RunDir
from edgecls.stats import WORSE

DEPLOY_RECORD = "deployed.json"
RECORD_SCHEMA_VERSION = 1


@dataclass
class Replacement:
    """How the model being deployed relates to the one the device runs."""

    sha256: str  # of the model being deployed
    previous: dict[str, Any] | None = None  # the device's record of its model (None: first deploy)
    verdict: str | None = None  # of the comparison NEW vs the device's model
    summary: str | None = None  # one line on that comparison, or why there was none
    report: str | None = None  # the saved comparison read, if any
    forced: bool = False

    @property
    def replaces(self) -> bool:
        """True when the device runs another model in this unit."""
        return self.previous is not None and self.previous.get("sha256") != self.sha256

    def record(self, model: Path) -> dict[str, Any]:
        """The device's new ``deployed.json``."""
        previous = self.previous if self.replaces else (self.previous or {}).get("replaced")
        return {"schema_version": RECORD_SCHEMA_VERSION, "model": model.name, "sha256": self.sha256,
                "source": str(model.resolve()), "run": _run_of(model),
                "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "replaced": ({"model": previous.get("model"), "sha256": previous.get("sha256"),
                              "source": previous.get("source"), "run": previous.get("run")}
                             if previous else None),
                "comparison": ({"verdict": self.verdict, "summary": self.summary, "report": self.report,
                                "forced": self.forced} if self.replaces else
                               (self.previous or {}).get("comparison"))}


def judge_replacement(model: Path, previous: dict[str, Any] | None, comparison: Path | None = None,
                      force: bool = False) -> Replacement:
    """The verdict on replacing the device's model (its record ``previous``) with ``model``.

    Raises:
        EdgeclsError: the comparison says ``worse`` (and not ``force``), a saved comparison
            is of other models, or the comparison could not run.
    """
    result = Replacement(file_sha256(model), previous, forced=force)
    if not result.replaces:
        return result
    if comparison is not None:
        report = load_comparison(comparison)
        _require_same_models(report, model, result.sha256, previous or {}, comparison)
        result.verdict, result.summary, result.report = report["verdict"], _summary(report), str(comparison)
    else:
        old = _old_model_here(previous or {})
        if old is None:
            result.summary = ("not compared: the model it replaces is not on this machine any more "
                              "(pass --comparison FILE from `edgecls compare NEW OLD --json FILE`)")
            return result
        try:
            compared = compare_paths(model, old)
        except EdgeclsError as exc:
            raise EdgeclsError(f"cannot compare {model.name} with the model on the device ({old}): "
                               f"{exc.message}", "pass --comparison FILE, or --force to deploy unjudged") from None
        result.verdict, result.summary = compared.verdict, compared.summary()
    if result.verdict == WORSE and not force:
        raise EdgeclsError(f"refused: {model.name} is worse than the model the device runs "
                           f"({(previous or {}).get('model')}): {result.summary}",
                           "deploy a better model, or pass --force to replace it anyway")
    return result


def _require_same_models(report: dict[str, Any], model: Path, sha256: str, previous: dict[str, Any],
                         path: Path) -> None:
    new, old = report.get("new") or {}, report.get("old") or {}
    new_fits = new.get("sha256") == sha256 or (new.get("kind") == "run" and new.get("run") == _run_of(model))
    old_fits = old.get("sha256") == previous.get("sha256") or (
        old.get("kind") == "run" and previous.get("run") is not None and old.get("run") == previous.get("run"))
    if not (new_fits and old_fits):
        raise EdgeclsError(f"the comparison {path} is of other models than {model.name} replacing the "
                           f"device's {previous.get('model')} (sha256 {str(previous.get('sha256'))[:12]})",
                           f"run `edgecls compare {model} OLD --json {path}` with the device's model as OLD")


def _summary(report: dict[str, Any]) -> str:
    overall = report.get("overall") or {}
    low, high = overall.get("interval_pp") or [None, None]
    return (f"{report.get('verdict')}: difference {overall.get('difference_pp')} pp [{low}, {high}] "
            f"on {overall.get('images')} held-out images")


def _old_model_here(previous: dict[str, Any]) -> Path | None:
    """The device's model on this machine: its file (same bytes) or else its run."""
    source = previous.get("source")
    if source and Path(source).is_file() and file_sha256(Path(source)) == previous.get("sha256"):
        return Path(source)
    run = previous.get("run")
    return Path(run) if run and RunDir(Path(run)).best_model.is_file() else None


def _run_of(model: Path) -> str | None:
    """The training run of an artifact in ``RUN/export/`` (or ``RUN/``), as an absolute path."""
    for folder in (model.resolve().parent.parent, model.resolve().parent):
        if RunDir(folder).split.is_file() and RunDir(folder).best_model.is_file():
            return str(folder)
    return None


def read_record(transport: SshTransport, model_dir: str) -> dict[str, Any] | None:
    """The device's ``deployed.json`` in ``model_dir`` (None when absent or unreadable)."""
    proc = transport.run(f"cat {shell_path(model_dir + '/' + DEPLOY_RECORD)} 2>/dev/null", 60.0, check=False)
    try:
        data = json.loads(proc.stdout.decode(errors="replace"))
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("schema_version") == RECORD_SCHEMA_VERSION else None


def write_record(transport: SshTransport, model_dir: str, record: dict[str, Any]) -> None:
    """Replaces the device's ``deployed.json`` atomically (written beside it, then renamed)."""
    folder = shell_path(model_dir)
    tmp, final = shell_path(f"{model_dir}/.{DEPLOY_RECORD}.tmp"), shell_path(f"{model_dir}/{DEPLOY_RECORD}")
    transport.run(f"mkdir -p {folder} && cat > {tmp} && mv -f {tmp} {final}", 60.0,
                  stdin=(json.dumps(record, indent=1) + "\n").encode())

