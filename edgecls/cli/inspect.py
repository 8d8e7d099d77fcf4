"""`edgecls inspect MODEL`: what a .tflite, .onnx or OpenVINO .xml file carries
(``edgecls.inspect_model``), as tables or JSON.

Runtime-only imports (no TensorFlow), so it works on a device too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from edgecls.api.inspecting import inspect_model, metadata_standards
from edgecls.cli.app import app

_SHOWN_LABELS = 12


@app.command("inspect")
def inspect(
    model: Path = typer.Argument(..., help="Model file: .tflite, .onnx or OpenVINO .xml."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with schema_version) instead of tables."),
) -> None:
    """Show what a model file carries: inputs and outputs (dtype, shape, quantization),
    labels, preprocessing, which metadata standards are present (edgecls, standard
    TFLite Metadata), producer and versions. Works on models from anywhere.
    """
    description = inspect_model(model).to_dict()
    if as_json:
        typer.echo(json.dumps(description, indent=2))
        return
    from rich.console import Console

    _render(description, Console())


def _render(d: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    summary = Table(title=f"{d['path']}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("format", f"{d['format']} ({d['size_bytes'] / 1024:.1f} KB)")
    producer = d["producer"]
    summary.add_row("producer", " ".join(str(v) for v in (producer.get("name"), producer.get("version")) if v)
                    or "unknown")
    for key, value in producer.items():
        if key not in ("name", "version") and value not in (None, ""):
            summary.add_row(key.replace("_", " "), str(value))
    summary.add_row("metadata", metadata_standards(d))
    if d.get("edgecls"):
        summary.add_row("precision", str(d["edgecls"].get("precision")))
    console.print(summary)
    console.print(_tensors(d))
    pre = d.get("preprocessing")
    if pre:
        console.print(f"[bold]preprocessing[/]: {pre['color']} {pre['input_size'][0]}x{pre['input_size'][1]} "
                      f"{pre['layout']}, resize {pre['resize']} ({pre['interpolation']}), "
                      f"input = pixel x {pre['scale']:g} {pre['offset']:+g}")
    else:
        console.print(f"[yellow]not runnable as an image classifier[/]: {d.get('runnable')}")
    console.print(_labels(d))


def _tensors(d: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="tensors", title_justify="left")
    for column in ("", "name", "dtype", "shape", "quantization (scale, zero point)"):
        table.add_column(column)
    for kind in ("inputs", "outputs"):
        for tensor in d[kind]:
            shape = "[" + ", ".join("?" if s < 0 else str(s) for s in tensor["shape"]) + "]"
            if tensor.get("batch") == "resizable":
                shape += " (batch resizable)"
            quant = tensor["quantization"]
            table.add_row(kind[:-1], tensor["name"], tensor["dtype"], shape,
                          f"{quant['scale']:.6g}, {quant['zero_point']}" if quant else "-")
    return table


def _labels(d: dict[str, Any]) -> str:
    labels = d.get("labels")
    if not labels:
        return "[bold]labels[/]: none embedded (pass --labels FILE to `edgecls run`)"
    shown = ", ".join(labels[:_SHOWN_LABELS]) + (", ..." if len(labels) > _SHOWN_LABELS else "")
    return f"[bold]labels[/] ({len(labels)}, from {d['labels_source']}): {shown}"
