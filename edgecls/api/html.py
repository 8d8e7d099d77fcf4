"""Small HTML pieces for the result objects' ``_repr_html_``: tables and inline images."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape
from typing import Any

STYLE = ("<style>table.edgecls{border-collapse:collapse;font-size:0.85rem}"
         "table.edgecls th,table.edgecls td{border:1px solid #ccc;padding:2px 6px}"
         "table.edgecls td.num{text-align:right;font-variant-numeric:tabular-nums}"
         "tr.failed td{color:#b3261e}tr.inconclusive td{color:#9a6700}"
         ".edgecls-note{color:#555;font-size:0.8rem}</style>")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] = (),
          caption: str = "") -> str:
    """An HTML table; numbers are right-aligned, every cell escaped."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = row_classes[index] if index < len(row_classes) else ""
        cells = "".join(f"<td class='{_cell_class(v)}'>{escape(_text(v))}</td>" for v in row)
        body.append(f"<tr class='{escape(css)}'>{cells}</tr>")
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table class='edgecls'>{title}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def note(text: str) -> str:
    return f"<p class='edgecls-note'>{escape(text)}</p>"


def png(data: bytes, alt: str) -> str:
    """An inline ``<img>`` of PNG bytes."""
    return f"<img alt='{escape(alt)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'/>"


def history_svg(rows: list[dict[str, str]]) -> str | None:
    """Accuracy and val accuracy per epoch as an inline SVG line plot (None without rows)."""
    series = {key: [_float(r.get(key)) for r in rows] for key in ("accuracy", "val_accuracy")}
    if not rows or all(v is None for values in series.values() for v in values):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    epochs = [int(r.get("epoch") or i + 1) for i, r in enumerate(rows)]
    for key, values in series.items():
        ax.plot(epochs, [float("nan") if v is None else v for v in values], marker="o", label=key)
    ax.set(xlabel="epoch", ylabel="accuracy", title="training history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _cell_class(value: Any) -> str:
    return "num" if isinstance(value, (int, float)) and not isinstance(value, bool) else "text"
