"""What the API returns: plain data with ``to_dict()``, rendered inline in a notebook by
``_repr_html_`` (tables, and plots as inline images) with no extra call."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecls.api import html

if TYPE_CHECKING:  # imported by the functions that return these: edgecls.Run stays light
    from edgecls.bench.report import MergedReport
    from edgecls.data.check import CheckReport


@dataclass
class DataReport:
    """The verdict of ``check_data`` on a dataset folder (``edgecls data check``)."""

    check: CheckReport

    @property
    def ok(self) -> bool:
        """Whether the dataset can be trained on (no errors)."""
        return not self.check.errors

    @property
    def errors(self) -> list[str]:
        return list(self.check.errors)

    @property
    def warnings(self) -> list[str]:
        return list(self.check.warnings)

    @property
    def classes(self) -> dict[str, int]:
        """Usable images per class."""
        return self.check.class_counts

    def raise_for_errors(self) -> None:
        """Raises the DataError training would stop on, if any."""
        self.check.raise_for_errors()

    def to_dict(self) -> dict[str, Any]:
        """The JSON report ``edgecls data check --json`` writes."""
        return self.check.to_json()

    def _repr_html_(self) -> str:
        data = self.to_dict()
        subsets = [s for s in self.check.usable if s is not None]
        rows = [[label, *(len(self.check.usable[s].get(label, [])) for s in subsets), count]
                for label, count in self.classes.items()]
        problems = {"unreadable (excluded)": len(data["unreadable"]),
                    "non-image (ignored)": len(data["non_images"]),
                    "label conflicts (excluded)": len(data["duplicates_across_classes"]),
                    "duplicates within a class (kept once)": len(data["duplicates_within_class"])}
        parts = [html.STYLE, html.table(["class", *subsets, "usable"], rows,
                                        row_classes=["failed" if r[-1] == 0 else "" for r in rows],
                                        caption=f"{self.check.root} ({self.check.layout} layout)")]
        parts += [html.note(f"{name}: {count}") for name, count in problems.items() if count]
        parts += [html.note(f"warning: {w}") for w in self.warnings]
        parts += [f"<p style='color:#b3261e'>error: {html.escape(e)}</p>" for e in self.errors]
        if self.ok:
            parts.append(html.note(f"ok: {data['total_usable']} usable images in {len(self.check.labels)} classes"))
        return "".join(parts)


@dataclass
class Evaluation:
    """A run's best model on one split (``edgecls evaluate``): the report dict, views of
    it, and the PNG of its most confident mistakes when one was drawn."""

    report: dict[str, Any]
    gallery_png: Path | None = None

    @property
    def accuracy(self) -> float:
        return float(self.report["accuracy"])

    @property
    def balanced_accuracy(self) -> float:
        return float(self.report["balanced_accuracy"])

    @property
    def confusion_matrix(self) -> list[list[int]]:
        """Rows: true class, columns: predicted, in ``report['labels']`` order."""
        return self.report["confusion_matrix"]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.report)

    def _repr_html_(self) -> str:
        report = self.report
        far = {entry["label"] for entry in report["weak_classes"]["far_below"]}
        rows = [[label, *(report["per_class"][label][k] for k in ("precision", "recall", "f1", "support"))]
                for label in report["labels"]]
        k = report.get("top_k")  # None when k would cover every class
        top_k = f"top-{k} accuracy {report[f'top_{k}_accuracy']:.4f} " if k else ""
        summary = (f"accuracy {report['accuracy']:.4f}, balanced accuracy {report['balanced_accuracy']:.4f}, "
                   f"{top_k}({report['num_samples']} images)")
        table = html.table(["class", "precision", "recall", "f1", "support"], rows,
                           row_classes=["failed" if r[0] in far else "" for r in rows],
                           caption=f"{report['split']} split of {report['run']}")
        mistakes = html.png(self.gallery_png.read_bytes(), "most confident mistakes") \
            if self.gallery_png is not None and self.gallery_png.is_file() else ""
        return html.STYLE + table + html.note(summary) + confusion_png(report) + mistakes


def confusion_png(report: dict[str, Any]) -> str:
    """The report's confusion matrix as an inline PNG (the figure the run's PNG has)."""
    from edgecls.train.plots import save_confusion_png

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "confusion.png"
        save_confusion_png(report["confusion_matrix"], report["labels"], path,
                           title=f"Confusion matrix ({report['split']})")
        return html.png(path.read_bytes(), "confusion matrix")


@dataclass
class BenchResult:
    """Measurements of ``benchmark`` or a comparison of ``report`` (``edgecls bench/report``).

    Attributes:
        merged: the records, grouped per target (``edgecls.bench.report.MergedReport``).
        raw: the report object ``edgecls bench`` writes to JSON (None for ``report``).
        json_path: where it was written, if anywhere.
    """

    merged: MergedReport
    raw: dict[str, Any] | None = None
    json_path: Path | None = None

    @property
    def records(self) -> list[dict[str, Any]]:
        return [row.record for row in self.merged.rows]

    @property
    def passed(self) -> bool:
        """Every model measured (and scored above the floor), every host reached."""
        hosts_ok = all(h.get("status") == "passed" for h in self.merged.hosts)
        return hosts_ok and all(r["status"] == "passed" for r in self.records)

    def to_dict(self) -> dict[str, Any]:
        """The report object as ``bench.json`` holds it (records and hosts for ``report``)."""
        return dict(self.raw) if self.raw is not None else {
            "records": self.records, "hosts": self.merged.hosts, "sources": self.merged.sources}

    def to_html(self) -> str:
        """The self-contained page ``edgecls report --html`` writes."""
        from edgecls.bench.render_html import render_html

        return render_html(self.merged)

    def _repr_html_(self) -> str:
        from edgecls.bench.render_html import render_fragment

        return render_fragment(self.merged)
