"""Report plots as inline SVG text (matplotlib, Agg backend, no display, no network)."""

from __future__ import annotations

import io
from typing import Any

from edgecls.bench.report import Row, pareto_front

MAX_CONFUSION_CLASSES = 30
MAX_CONFUSION_PLOTS = 12


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})
    return plt


def _to_svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    _pyplot().close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE for inlining


def accuracy_vs_latency(group: str, rows: list[Row]) -> str | None:
    """Top-1 against p50 latency for one target, the Pareto front as a step line."""
    points = [(row.record["latency"]["p50_ms"], row.top1, row) for row in rows
              if row.top1 is not None and row.record.get("latency")]
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    front = pareto_front([(lat, acc) for lat, acc, _ in points])
    for index, (lat, acc, row) in enumerate(points):
        on_front = index in front
        ax.scatter(lat, acc, s=60 if on_front else 30, zorder=3, marker="o" if on_front else "x",
                   color="tab:red" if on_front else "tab:gray",
                   label=f"{index + 1}. {row.label} ({row.record.get('precision') or '?'})")
        ax.annotate(str(index + 1), (lat, acc), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front_points = [points[i][:2] for i in front]
    ax.step([p[0] for p in front_points], [p[1] for p in front_points], where="post",
            color="tab:red", alpha=0.6, label="Pareto front (nothing faster and more accurate)")
    ax.set_xlabel("p50 latency per frame (ms, log scale)")
    _log_axis(ax.xaxis)
    ax.set_ylabel("top-1 accuracy")
    ax.set_title(f"Accuracy vs latency: {group}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    return _to_svg(fig)


def _log_axis(axis: Any) -> None:
    """Log scale with plain tick labels at 1, 2, 5 x 10^k (no 6x10^-1 notation)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.axes.set_xscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def size_per_artifact(rows: list[Row]) -> str | None:
    """Horizontal bars: size on disk of each distinct artifact (file name and size)."""
    distinct: dict[tuple[str, int], str] = {}
    for row in rows:
        if row.record["size_bytes"] > 0:
            distinct.setdefault((row.record["file"], row.record["size_bytes"]), row.group)
    names = [file for file, _ in distinct]
    sizes = {  # a file name with different sizes on different machines is told apart by group
        (file if names.count(file) == 1 else f"{file} ({group})"): size / 1e6
        for (file, size), group in distinct.items()
    }
    if not sizes:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.35 * len(sizes)))
    names = list(sizes)
    ax.barh(names, [sizes[n] for n in names], color="tab:blue")
    for y, name in enumerate(names):
        ax.annotate(f"{sizes[name]:.2f}", (sizes[name], y), xytext=(3, -3),
                    textcoords="offset points", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("size on disk (MB)")
    ax.set_title("Size per artifact")
    ax.grid(axis="x", alpha=0.3)
    return _to_svg(fig)


def per_class_drop(rows: list[Row]) -> str | None:
    """Per-class top-1 drop of each INT8 model versus its float twin, in pp (+ is a loss)."""
    pairs = [(row, row.float_per_class) for row in rows
             if row.record.get("precision") == "int8" and row.float_per_class
             and row.record.get("accuracy") and not row.record["accuracy"].get("scored_with_threads")]
    if not pairs:
        return None
    plt = _pyplot()
    classes = list(pairs[0][1])
    width = 0.8 / len(pairs)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.5 * len(classes) * max(1, len(pairs) / 2)), 3.8))
    for k, (row, float_per_class) in enumerate(pairs):
        per_class = row.record["accuracy"]["per_class"]
        drops = [100.0 * (float_per_class.get(c, 0.0) - per_class.get(c, 0.0)) for c in classes]
        ax.bar([i + k * width for i in range(len(classes))], drops, width=width,
               label=f"{row.group}: {row.record['file']}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(pairs) - 1) / 2 for i in range(len(classes))])
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_ylabel("top-1 drop vs float (pp, + is a loss)")
    ax.set_title("Per-class accuracy drop, INT8 vs float (or the reference)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    return _to_svg(fig)


def confusion_matrix(row: Row) -> str | None:
    """The confusion matrix of one record (rows: true class, columns: predicted)."""
    accuracy = row.record.get("accuracy")
    if not accuracy or not accuracy.get("confusion"):
        return None
    labels = accuracy["confusion_labels"]
    if len(labels) > MAX_CONFUSION_CLASSES:
        return None
    import numpy as np

    matrix = np.asarray(accuracy["confusion"], dtype=float)
    other = np.asarray(accuracy.get("confusion_other") or [0] * len(labels), dtype=float)
    columns = list(labels)
    if other.any():
        matrix = np.column_stack([matrix, other])
        columns.append("(other)")
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    plt = _pyplot()
    side = 1.6 + 0.45 * len(columns)
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if len(labels) <= 15:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{row.record['file']} ({row.group})", fontsize=8)
    return _to_svg(fig)
