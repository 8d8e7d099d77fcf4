"""What a tuning run leaves besides the winner: a table (CSV) and an HTML page of every
trial, and the Pareto front (val accuracy against latency and size) as a plot."""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from edgecls.atomic import atomic_path, write_text_atomic

COLUMNS = ("trial", "state", "family", "size", "mac_reduction", "format", "threads", "weights", "lr",
           "fine_tune_lr", "fine_tune_fraction", "latency_ms", "latency_min_ms", "latency_max_ms", "latency_rounds",
           "budget_decision", "size_mb", "trained_latency_ms", "trained_size_mb", "val_accuracy", "pareto",
           "repeat_of", "note")


def trial_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per trial, in trial order; the state says ``over_budget`` for a
    candidate that was measured and never trained."""
    rows = []
    for record in sorted(records, key=lambda r: r["number"]):
        candidate = record.get("candidate") or {}
        state = "over_budget" if record.get("over_budget") else record["state"]
        size = record.get("size_bytes")
        rows.append({"trial": record["number"], "state": state,
                     **{k: candidate.get(k) for k in ("family", "size", "mac_reduction", "format", "threads",
                                                      "weights", "lr", "fine_tune_lr", "fine_tune_fraction")},
                     **{k: record.get(k) for k in ("latency_ms", "latency_min_ms", "latency_max_ms",
                                                   "latency_rounds", "budget_decision")},
                     "size_mb": round(size / 1e6, 3) if size else None,
                     "val_accuracy": record.get("val_accuracy"), "pareto": False, "repeat_of": record.get("repeat_of"),
                     "note": record.get("note"), "run_dir": record.get("run_dir"),
                     "waited_for_twin": record.get("waited_for_twin")})
    for row in pareto_front(rows):
        row["pareto"] = True
    return rows


def feasible(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials trained to the end within budget, best val accuracy first (a repeat stands
    for its twin, which is listed already)."""
    done = [r for r in rows if r["state"] == "complete" and r["val_accuracy"] is not None
            and r.get("repeat_of") is None]
    return sorted(done, key=lambda r: (-r["val_accuracy"], r["latency_ms"] or 0, r["trial"]))


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The feasible trials no other beats on val accuracy, latency and size at once."""
    done = feasible(rows)

    def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
        ge = (a["val_accuracy"] >= b["val_accuracy"] and a["latency_ms"] <= b["latency_ms"]
              and a["size_mb"] <= b["size_mb"])
        gt = (a["val_accuracy"] > b["val_accuracy"] or a["latency_ms"] < b["latency_ms"]
              or a["size_mb"] < b["size_mb"])
        return ge and gt

    return [r for r in done if not any(dominates(o, r) for o in done if o is not r)]


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def write_html(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path, plot: str | None) -> None:
    """A self-contained page: the summary, the plot (beside it) and every trial."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "\n".join("<tr" + (' class="front"' if r["pareto"] else "") + ">"
                     + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in COLUMNS) + "</tr>"
                     for r in rows)
    facts = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(_cell(v))}</li>" for k, v in summary.items())
    image = f'<p><img src="{html.escape(plot)}" alt="Pareto front"></p>' if plot else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edgecls tune</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;
padding:2px 6px;font-size:13px}} tr.front{{background:#e6f4ea}}</style></head><body>
<h1>edgecls tune</h1><ul>{facts}</ul>{image}
<p>Green rows: the Pareto front (no other trial is at least as accurate, as fast and as small).
latency_ms, size_mb: the architecture's artifact with untrained weights, as the search measured it
(latency_ms: the median of latency_rounds benches, whose range is latency_min_ms to latency_max_ms;
budget_decision remeasured-*: that range held the limit, so more rounds were benched before deciding);
trained_latency_ms, trained_size_mb: the finalists benched again with their trained weights;
repeat_of: a trial that drew a finished trial's parameters and reused its result, untrained (or drew
those of a trial another worker was running, and waited for its result).</p>
<table><tr>{head}</tr>
{body}
</table></body></html>
"""
    write_text_atomic(path, page)


def plot_front(rows: list[dict[str, Any]], budget: Any, path: Path, where: str) -> bool:
    """Val accuracy against latency and against size; over-budget candidates as crosses
    at zero accuracy. Returns False when no trial was measured."""
    measured = [r for r in rows if r["latency_ms"] is not None]
    if not measured:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key, limit, label in ((axes[0], "latency_ms", budget.latency_ms, f"p{budget.percentile} latency (ms)"),
                                    (axes[1], "size_mb", budget.size_bytes and budget.size_bytes / 1e6, "size (MB)")):
        _scatter(axis, measured, key)
        if limit:
            axis.axvline(limit, color="red", linestyle="--", label="budget")
        axis.set_xlabel(label)
        axis.set_ylabel("val accuracy")
        axis.legend(fontsize=8)
    figure.suptitle(f"edgecls tune: {where}", fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
    return True


def _scatter(axis: Any, rows: list[dict[str, Any]], key: str) -> None:
    trained = [r for r in rows if r["val_accuracy"] is not None and r.get("repeat_of") is None]
    front = sorted((r for r in trained if r["pareto"]), key=lambda r: r[key])
    over = [r for r in rows if r["state"] == "over_budget"]
    axis.scatter([r[key] for r in trained], [r["val_accuracy"] for r in trained], s=18, label="trained")
    if front:
        axis.plot([r[key] for r in front], [r["val_accuracy"] for r in front], "g-o", ms=5, label="Pareto front")
    if over:
        axis.scatter([r[key] for r in over], [0.0] * len(over), marker="x", color="gray", label="over budget")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
