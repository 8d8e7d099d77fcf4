"""A Markdown rendering of a merged report, for pasting into a pull request."""

from __future__ import annotations

from edgecls.bench.columns import (baseline_notes, cells, columns_for, failure_notes, headers, host_lines,
                                   machine_summary)
from edgecls.bench.report import MergedReport


def render_markdown(merged: MergedReport) -> str:
    """One section per target: machine line and a pipe table."""
    lines = ["# edgecls bench report", ""]
    if merged.warnings:
        lines += ["**Warnings**", ""] + [f"- {_escape(w)}" for w in merged.warnings] + [""]
    if merged.hosts:
        lines += ["**Hosts**", ""] + [f"- {_escape(line)}" for _, line in host_lines(merged.hosts)] + [""]
    for group, rows in merged.groups().items():
        lines += [f"## {_escape(group)}", ""]
        for summary in sorted({machine_summary(row.machine) for row in rows}):
            lines.append(f"_{_escape(summary)}_")
        columns = columns_for(rows)
        lines += ["", "| " + " | ".join(headers(columns)) + " |",
                  "|" + "|".join("---:" if right else "---" for _, _, right, _ in columns) + "|"]
        lines += ["| " + " | ".join(_escape(c) for c in cells(row, columns)) + " |" for row in rows]
        lines += [""] + [f"- {_escape(note)}" for note in failure_notes(rows) + baseline_notes(rows)]
        lines.append("")
    lines.append("Top-1 drop (+ is a loss) is versus the fp32 model on the same machine, else the float model's "
                 "top-1 on the same images from the export's predictions.json, else the reference model; "
                  "p50 spread is the range of the p50 of five consecutive blocks of runs, in percent of their median.")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
