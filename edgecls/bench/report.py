"""Merge bench reports from several machines into rows ready to render.

Rows are grouped by target (the ``--target`` profile, else the machine) and sorted by
format and precision. Each row carries its accuracy drop versus float: the fp32
record of the same model on the same machine, or else the reference model scored
with it. Bad files are skipped with a named warning; different label sets are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.bench.machine import machine_key
from edgecls.bench.schema import SchemaError, load_report
from edgecls.errors import EdgeclsError
from edgecls.formats import FORMAT_NAMES, PRECISIONS
from edgecls.stats import PairedDrop, compare_paired

_PRECISION_ORDER = {name: index for index, name in enumerate(PRECISIONS)}
_FORMAT_ORDER = {name: index for index, name in enumerate(FORMAT_NAMES)}


@dataclass
class Row:
    """One measured model as the report shows it."""

    group: str
    machine: dict[str, Any]
    record: dict[str, Any]
    float_top1: float | None = None
    float_source: str | None = None  # "fp32 <file>", "float model on the same N images (...)", "reference <file>"
    float_per_class: dict[str, float] | None = None
    host: str | None = None  # the ssh host spec for records benched with --host
    paired: PairedDrop | None = None  # vs the fp32 twin, image by image, when both were scored alike

    @property
    def machine_id(self) -> str:
        """Tells devices apart, also two hosts that report the same machine."""
        return machine_key(self.machine) + (f" via {self.host}" if self.host else "")

    @property
    def top1(self) -> float | None:
        accuracy = self.record.get("accuracy")
        return accuracy["top1"] if accuracy else None

    @property
    def drop_pp(self) -> float | None:
        """Top-1 lost versus float, in percentage points (positive = worse than float)."""
        if self.top1 is None or self.float_top1 is None:
            return None
        return round(100.0 * (self.float_top1 - self.top1), 3)

    @property
    def worst_class(self) -> tuple[str, float, int] | None:
        """(class, drop in pp, net images lost) of the class that lost most versus float."""
        accuracy = self.record.get("accuracy") or {}
        per_class, counts = accuracy.get("per_class"), accuracy.get("class_counts") or {}
        if not per_class or not self.float_per_class:
            return None
        drops = {name: self.float_per_class[name] - value for name, value in per_class.items()
                 if name in self.float_per_class}
        if not drops:
            return None
        name = max(drops, key=drops.get)
        return name, 100.0 * drops[name], round(drops[name] * counts.get(name, 0))

    @property
    def label(self) -> str:
        """Short name for plots: file, plus threads when set."""
        threads = self.record.get("threads")
        return self.record["file"] + (f" ×{threads}t" if threads else "")


@dataclass
class MergedReport:
    """All usable rows, grouped, plus the warnings about skipped files."""

    rows: list[Row]
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    hosts: list[dict[str, Any]] = field(default_factory=list)  # status per ssh host (bench --host)

    def groups(self) -> dict[str, list[Row]]:
        """Rows by group, in first-seen order."""
        grouped: dict[str, list[Row]] = {}
        for row in self.rows:
            grouped.setdefault(row.group, []).append(row)
        return grouped


def merge_reports(paths: list[str | Path]) -> MergedReport:
    """Loads, validates and merges report files.

    Raises:
        EdgeclsError: no file was usable, or the models have different label sets.
    """
    reports, warnings, sources = [], [], []
    seen: set[Path] = set()
    for path in paths:
        if Path(path).resolve() in seen:
            warnings.append(f"skipped {path}: given twice")
            continue
        seen.add(Path(path).resolve())
        try:
            reports.append(load_report(path))
        except SchemaError as exc:
            warnings.append(f"skipped {path}: {exc}")
            continue
        sources.append(str(path))
    return merge_records(reports, warnings, sources)


def merge_records(reports: list[dict[str, Any]], warnings: list[str] | None = None,
                  sources: list[str] | None = None, check_labels: bool = True) -> MergedReport:
    """Merges already loaded report objects (see ``merge_reports``).

    ``check_labels=False`` shows models of different label sets side by side (what one
    bench of unrelated models prints) instead of refusing to compare them.
    """
    merged = MergedReport(rows=[], warnings=list(warnings or []), sources=list(sources or []))
    for report in reports:
        merged.rows.extend(_rows_of(report))
        merged.hosts.extend(report.get("hosts") or [])
    if not merged.rows:
        failed_hosts = [f"{h['host']} {h['status']}: {h.get('reason')}" for h in merged.hosts]
        detail = "; ".join(merged.warnings + failed_hosts) or "the files hold no records"
        raise EdgeclsError(f"nothing to report: {detail}",
                           "pass JSON files written by `edgecls bench --json`")
    if check_labels:
        check_label_sets(merged.rows)
    _attach_float_baselines(merged.rows)
    merged.rows.sort(key=_sort_key)
    return merged


def check_label_sets(rows: list[Row]) -> None:
    """Refuses to compare models that classify into different label lists."""
    first: Row | None = None
    for row in rows:
        labels = row.record.get("labels")
        if labels is None:
            continue
        if first is None:
            first = row
            continue
        if labels != first.record["labels"]:
            raise EdgeclsError(
                f"models with different label sets cannot be compared: {first.record['file']} "
                f"({_describe_labels(first.record['labels'])}) vs {row.record['file']} "
                f"({_describe_labels(labels)})",
                "report models trained on the same classes together; run `edgecls report` "
                "once per label set",
            )


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (latency, accuracy) points no other point beats on both.

    A point is dominated when another is at least as fast and at least as accurate,
    and strictly better in one. Returned in increasing latency.
    """
    front = []
    for i, (lat_i, acc_i) in enumerate(points):
        dominated = any(
            lat_j <= lat_i and acc_j >= acc_i and (lat_j < lat_i or acc_j > acc_i)
            for j, (lat_j, acc_j) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def _rows_of(report: dict[str, Any]) -> list[Row]:
    rows = []
    for record in report["records"]:
        machine = record.get("machine") or report["machine"]  # a record benched over ssh has its own
        host = record.get("host")
        group = record.get("target") or machine.get("target") or machine_key(machine)
        rows.append(Row(group=f"{host} · {group}" if host else group, machine=machine, record=record, host=host))
    return rows


def _attach_float_baselines(rows: list[Row]) -> None:
    for row in rows:
        base = _float_twin(row, rows)
        if base is not None:
            row.float_top1 = base.top1
            row.float_source = f"fp32 {base.record['file']}"
            row.float_per_class = base.record["accuracy"].get("per_class")
            row.paired = _paired(base.record["accuracy"], row.record["accuracy"])
            continue
        accuracy = row.record.get("accuracy") or {}
        from_export = accuracy.get("float")
        if _covers(from_export, accuracy):
            row.float_top1 = from_export["top1"]
            row.float_source = f"float model on the same {from_export['images']} images (export's predictions.json)"
            row.paired = _paired_bits(from_export, accuracy)  # the same images by construction
            continue
        reference = accuracy.get("reference")
        if reference:
            row.float_top1 = reference["top1"]
            row.float_source = f"reference {Path(reference['model']).name}"
            row.float_per_class = reference.get("per_class")


def _covers(from_export: Any, accuracy: dict[str, Any]) -> bool:
    """True when ``accuracy["float"]`` is a float top-1 over the record's own images."""
    return (isinstance(from_export, dict) and isinstance(from_export.get("top1"), (int, float))
            and from_export.get("images") == accuracy.get("images"))


def _float_twin(row: Row, rows: list[Row]) -> Row | None:
    """The fp32 record of the same model and run on the same machine (same format preferred)."""
    candidates = [
        other for other in rows
        if other.record.get("precision") == "fp32" and other.top1 is not None
        and other.record.get("model_name") == row.record.get("model_name")
        and other.record.get("run") == row.record.get("run")
        and other.machine_id == row.machine_id
    ]
    candidates.sort(key=lambda other: other.record["format"] != row.record["format"])
    return candidates[0] if candidates else None


def _paired(reference: dict[str, Any], candidate: dict[str, Any]) -> PairedDrop | None:
    """The paired drop of two records scored on the same images (same count, same files)."""
    files = [(acc.get("selection") or {}).get("files") for acc in (reference, candidate)]
    return _paired_bits(reference, candidate) if files[0] == files[1] else None


def _paired_bits(reference: dict[str, Any], candidate: dict[str, Any]) -> PairedDrop | None:
    """The paired drop of two ``correct_bits`` over the same ``images``, in the same order."""
    import numpy as np

    bits = reference.get("correct_bits"), candidate.get("correct_bits")
    images = reference.get("images")
    if None in bits or not images or images != candidate.get("images"):
        return None
    ref, cand = (np.unpackbits(np.frombuffer(bytes.fromhex(b), np.uint8))[:images].astype(bool)
                 for b in bits)
    return compare_paired(ref, cand)


def _sort_key(row: Row) -> tuple:
    record = row.record
    return (
        row.group,
        _FORMAT_ORDER.get(record["format"], 9), record["format"],
        _PRECISION_ORDER.get(record.get("precision") or "", 8), record.get("precision") or "",
        record.get("threads") or 0, record["file"],
    )


def _describe_labels(labels: list[str]) -> str:
    shown = ", ".join(repr(label) for label in labels[:4]) + (", ..." if len(labels) > 4 else "")
    return f"{len(labels)} labels: {shown}"
