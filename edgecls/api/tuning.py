"""``edgecls.tune_model``: the most accurate model within a latency and size budget
measured on the target (``edgecls tune``), and its result, which renders in a notebook.

Named ``tune_model`` because ``edgecls.tune`` is the package that does the work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.api import html


@dataclass
class TuningResult:
    """How a search ended: every trial, the summary, the winner (None when the search was
    interrupted or not finalized) and the notes (finalists that dropped out or gave way).

    Attributes:
        out: the tuning folder (``trials.csv``, ``index.html``, ``pareto.png``, ``best/``).
        trials: one dict per trial (the columns of ``trials.csv``).
        summary: counts, budget, where figures were measured (``summary.json``).
        winner: the winner's figures, run and artifact paths.
        notes: what the output said about finalists that did not make it.
        messages: every progress message of the search, in order.
        interrupted: Ctrl+C ended the search (continue with ``resume=True``).
    """

    out: Path
    trials: list[dict[str, Any]]
    summary: dict[str, Any]
    winner: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def pareto_png(self) -> Path | None:
        """The plot of val accuracy against latency and size (None before any measurement)."""
        path = self.out / "pareto.png"
        return path if path.is_file() else None

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}

    def _repr_html_(self) -> str:
        parts = [html.STYLE]
        if self.winner:
            w = self.winner
            parts.append(html.note(
                f"winner: trial {w['trial']} {w['family']} {w['size']}px, {w['latency_ms']:.2f} ms, "
                f"{w['size_bytes'] / 1e6:.2f} MB ({w['figures']}); INT8 gate {w['gate']}; artifact {w['artifact']}"))
        parts += [html.note(f"note: {note}") for note in self.notes]
        if self.pareto_png:
            parts.append(html.png(self.pareto_png.read_bytes(), "Pareto front"))
        columns = ("trial", "state", "family", "size", "mac_reduction", "format", "latency_ms", "size_mb",
                   "trained_latency_ms", "val_accuracy")
        rows = [[r.get(c) for c in columns] for r in self.trials]
        parts.append(html.table(columns, rows, row_classes=["failed" if r["state"] == "failed" else ""
                                                             for r in self.trials],
                                caption=_caption(self.summary)))
        return "".join(parts)


def _caption(summary: dict[str, Any]) -> str:
    return (f"{summary['trials']} trials ({summary['complete']} complete, {summary['pruned']} pruned, "
            f"{summary['over_budget']} over budget, {summary['failed']} failed, {summary.get('repeats', 0)} "
            f"repeats reused); {summary['budget']}, "
            f"{summary['figures']}")


def tune_model(data: str | Path | None = None, *, out: str | Path, resume: bool = False,
               max_latency: str | None = None, max_size: str | None = None, latency_percentile: int | None = None,
               host: str | None = None, target: str | None = None, time_budget: str | None = None,
               trials: int | None = None, storage: str | None = None, study: str | None = None,
               families: str | Sequence[str] | None = None, sizes: str | Sequence[int] | None = None,
               mac_reductions: str | Sequence[float] | None = None, formats: str | Sequence[str] | None = None,
               threads: str | Sequence[int] | None = None, final_epochs: int | None = None,
               seed: int | None = None, progress: bool = True) -> TuningResult:
    """Searches for the most accurate model within the budget, then trains the winner in
    full and exports it through the gate into ``out/best`` (``edgecls tune``).

    Every argument not listed below is a field of ``edgecls.tune.options.TuneOptions``
    (budgets with units, e.g. ``max_latency="10ms"``; lists as "96,128" or [96, 128]);
    None means its default.

    Args:
        data: the image folder (not needed with ``resume``).
        out: the tuning folder.
        resume: continue the search in ``out`` with its saved settings.
        progress: print every message of the search (on stderr) as it happens.

    Raises:
        EdgeclsError: bad options, data or storage (before anything is trained), or no
            candidate within the budget (``NoCandidateError``, naming the closest).
    """
    from edgecls.tune.options import TuneOptions

    given = {k: v for k, v in locals().items() if k in _OPTION_NAMES and v is not None}
    options = TuneOptions(**given)
    return run_tune(options, data, out, resume, progress)


def run_tune(options: Any, data: str | Path | None, out: str | Path, resume: bool = False,
             progress: bool = True) -> TuningResult:
    """``tune_model`` from a ``TuneOptions`` (what the command line calls)."""
    from edgecls.present.notes import say
    from edgecls.present.tf_import import import_tensorflow_quietly
    from edgecls.tune.tuner import open_tuning, run_tuning

    messages: list[str] = []

    def record(message: str) -> None:
        messages.append(message)
        say(message, enabled=progress)

    config = options.to_config(data, out, resume)
    record(f"budget: {config.budget.describe()}; {config.target.label()}")
    tuning = open_tuning(config, resume)  # storage, study and data checked before TensorFlow loads
    import_tensorflow_quietly()
    result = run_tuning(tuning, say=record)
    return TuningResult(Path(config.out), result.rows, result.summary, result.winner, result.notes, messages,
                        result.interrupted)


_OPTION_NAMES = ("max_latency", "max_size", "latency_percentile", "host", "target", "time_budget", "trials",
                 "storage", "study", "families", "sizes", "mac_reductions", "formats", "threads", "final_epochs",
                 "seed")
