"""Writes an ``ExplainReport``: one PNG per image, ``explanations.json`` for all of them,
and ``contact_sheet.png`` when a folder was explained. Every file is written atomically.

``explanations.json``::

    schema_version, method, model {path, kind}, compared_model {path, kind} | null,
    grid_size, images: [{image, png, top1, explanations: [{method, class, class_index,
    score, rank, seconds, options, heatmap (grid_size x grid_size, 0..1)}],
    compared: {top1, top1_changed, explanations, differences: [{rank_correlation,
    top20_overlap}]} | null}], skipped: [{image, reason}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgecls.atomic import write_bytes_atomic, write_text_atomic
from edgecls.explain.api import ExplainReport, ImageResult
from edgecls.explain.heatmap import GRID_SIZE
from edgecls.explain.model import ExplainedModel
from edgecls.explain.render import THUMB, contact_sheet, encode_png, explanation_tile

EXPLAIN_SCHEMA_VERSION = 1
JSON_NAME = "explanations.json"
SHEET_NAME = "contact_sheet.png"


def save_report(report: ExplainReport, out_dir: str | Path, sheet: bool | None = None) -> Path:
    """Writes the PNGs, the JSON and (for folders, or when ``sheet``) the contact sheet.

    Returns:
        The path of ``explanations.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = png_names(report)
    for index, name in enumerate(names):
        write_bytes_atomic(out / name, encode_png(report.panel(index)))
    if (report.from_folder if sheet is None else sheet) and report.results:
        write_bytes_atomic(out / SHEET_NAME, encode_png(sheet_image(report)))
    json_path = out / JSON_NAME
    write_text_atomic(json_path, json.dumps(report_dict(report, names), indent=1))
    return json_path


def png_names(report: ExplainReport) -> list[str]:
    """A unique PNG file name per result, from the image's name."""
    names: list[str] = []
    for index, result in enumerate(report.results):
        stem = result.path.stem if result.path is not None else f"image_{index:03d}"
        name, n = f"{stem}.png", 2
        while name in names or name in (SHEET_NAME,):
            name, n = f"{stem}_{n}.png", n + 1
        names.append(name)
    return names


def sheet_image(report: ExplainReport):
    """One captioned thumbnail per image: the top explanation's overlay."""
    tiles = [explanation_tile(r.image, r.explanations[0], THUMB) for r in report.results]
    return contact_sheet(tiles)


def report_dict(report: ExplainReport, names: list[str] | None = None) -> dict[str, Any]:
    """The JSON document (see the module docstring)."""
    names = names or png_names(report)
    return {
        "schema_version": EXPLAIN_SCHEMA_VERSION, "method": report.method,
        "model": _model_dict(report.model),
        "compared_model": _model_dict(report.compared_model) if report.compared_model else None,
        "grid_size": GRID_SIZE,
        "images": [_result_dict(r, name) for r, name in zip(report.results, names)],
        "skipped": report.skipped,
    }


def _model_dict(model: ExplainedModel) -> dict[str, str]:
    return {"path": str(model.path), "kind": model.kind}


def _result_dict(result: ImageResult, png: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "image": str(result.path) if result.path else None, "png": png, "top1": result.top1,
        "explanations": [e.to_dict() for e in result.explanations], "compared": None,
    }
    if result.compared_top1 is not None:
        entry["compared"] = {
            "top1": result.compared_top1, "top1_changed": result.top1_changed,
            "explanations": [e.to_dict() for e in result.compared],
            "differences": [d.to_dict() for d in result.differences],
        }
    return entry
