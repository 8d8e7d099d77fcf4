"""A self-contained HTML report: inline CSS and inline SVG plots, nothing fetched."""

from __future__ import annotations

import datetime as dt
from html import escape

from edgecls.bench import plots
from edgecls.bench.columns import baseline_notes, cells, columns_for, failure_notes, host_lines, machine_summary
from edgecls.bench.report import MergedReport, Row

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; } h3 { font-size: 1rem; }
table.bench { border-collapse: collapse; font-size: 0.82rem; margin: 0.5rem 0 1rem; }
table.bench th, table.bench td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
table.bench th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.passed td.status { color: #11772d; } tr.below_floor td.status { color: #9a6700; }
tr.failed td.status { color: #b3261e; } tr.failed { background: #fff4f4; }
.failures { color: #b3261e; font-size: 0.85rem; } .machine { color: #555; font-size: 0.85rem; }
.warning { color: #9a6700; }
.scroll { overflow-x: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure.plot { margin: 0; } figure.plot svg { max-width: 100%; height: auto; }
ul.hosts li.passed { color: #11772d; } ul.hosts li.failed, ul.hosts li.unreachable { color: #b3261e; }
.note { color: #555; font-size: 0.8rem; max-width: 60rem; }
"""


def render_html(merged: MergedReport) -> str:
    """The whole page as one HTML string."""
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>edgecls bench report</title><style>{_CSS}</style></head>"
            f"<body>\n{_body(merged)}\n</body></html>\n")


def render_fragment(merged: MergedReport) -> str:
    """The page's body with its styles, to embed in another page (a notebook cell); the
    page's ``body`` style applies to this block only, not to the page around it."""
    css = _CSS.replace("body {", ".edgecls-report {", 1)
    return f"<div class='edgecls-report'><style>{css}</style>\n{_body(merged)}</div>"


def _body(merged: MergedReport) -> str:
    parts = [f"<h1>edgecls bench report</h1><p class='note'>{len(merged.rows)} records from "
             f"{len(merged.sources)} file(s), rendered {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.</p>"]
    parts += [f"<p class='warning'>warning: {escape(w)}</p>" for w in merged.warnings]
    if merged.hosts:
        items = "".join(f"<li class='{escape(status)}'>{escape(line)}</li>"
                        for status, line in host_lines(merged.hosts))
        parts.append(f"<section><h2>Hosts</h2><ul class='hosts'>{items}</ul></section>")
    for group, rows in merged.groups().items():
        parts.append(_group_section(group, rows))
    parts.append(_cross_target_section(merged.rows))
    parts.append(_NOTE)
    return "\n".join(parts)


def _group_section(group: str, rows: list[Row]) -> str:
    machines = "".join(f"<p class='machine'>{escape(m)}</p>"
                       for m in sorted({machine_summary(r.machine) for r in rows}))
    plot = plots.accuracy_vs_latency(group, rows)
    figure = _figure(plot, f"Accuracy vs latency on {group}") if plot else ""
    return f"<section><h2>{escape(group)}</h2>{machines}{_table(rows)}<div class='plots'>{figure}</div></section>"


def _cross_target_section(rows: list[Row]) -> str:
    figures = [_figure(plots.size_per_artifact(rows), "Size per artifact"),
               _figure(plots.per_class_drop(rows), "Per-class drop INT8 vs float")]
    scored = [r for r in rows if r.record.get("accuracy") and not r.record["accuracy"].get("scored_with_threads")]
    confusions = [_figure(plots.confusion_matrix(r), f"Confusion matrix {r.record['file']}")
                  for r in scored[: plots.MAX_CONFUSION_PLOTS]]
    html = "<section><h2>Artifacts</h2><div class='plots'>" + "".join(figures) + "</div>"
    if any(confusions):
        html += "<h3>Confusion matrices</h3><div class='plots'>" + "".join(confusions) + "</div>"
    return html + "</section>"


def _table(rows: list[Row]) -> str:
    columns = columns_for(rows)
    head = "".join(f"<th>{escape(name)}</th>" for name, _, _, _ in columns)
    body = []
    for row in rows:
        tds = "".join(
            f"<td class='{_cell_class(name, right)}'>{escape(value)}</td>"
            for (name, _, right, _), value in zip(columns, cells(row, columns))
        )
        body.append(f"<tr class='{escape(row.record['status'])}'>{tds}</tr>")
    notes = "".join(f"<li>{escape(note)}</li>" for note in failure_notes(rows) + baseline_notes(rows))
    notes = f"<ul class='failures'>{notes}</ul>" if notes else ""
    table = f"<table class='bench'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f"<div class='scroll'>{table}</div>{notes}"


def _cell_class(name: str, right: bool) -> str:
    return "status" if name == "status" else "num" if right else "text"


def _figure(svg: str | None, caption: str) -> str:
    if not svg:
        return ""
    return f"<figure class='plot' aria-label='{escape(caption)}'>{svg}</figure>"


_NOTE = (
    "<p class='note'>Latency is <code>Classifier.predict</code> on one prepared frame after an "
    "untimed warm-up; p50 spread is the range of the p50 of five consecutive blocks of runs, "
    "the noise this machine showed during the run. Peak RSS is measured in a fresh process per "
    "model. Top-1 drop (+ is a loss) is versus the fp32 model of the same run on the same machine; without "
    "one, versus the float model's top-1 on the same images from the export's predictions.json; "
    "else the reference model.</p>"
)
