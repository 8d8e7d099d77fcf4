"""`edgecls prune`: magnitude (sparser weights) or structured (narrower blocks) pruning of a
trained run into a new run that `edgecls export` takes like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from edgecls.api.pruning import prune_run_dir
from edgecls.cli.app import app
from edgecls.cli.options import NO_PROGRESS_HELP


@app.command("prune")
def prune(
    run: Path = typer.Argument(..., help="Run directory of `edgecls train`."),
    sparsity: float = typer.Option(0.5, "--sparsity", "-s", help="Final share of zero weights per kernel."),
    epochs: int = typer.Option(2, "--epochs", "-e", help="Fine-tune epochs while pruning."),
    out: Path = typer.Option(None, "--out", "-o", help="New run directory (default: RUN-pruned)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Fine-tune batch size."),
    learning_rate: float = typer.Option(1e-4, "--lr", help="Fine-tune learning rate (Adam)."),
    min_weights: int = typer.Option(1024, "--min-weights",
                                    help="Kernels with fewer weights stay dense."),
    structured: bool = typer.Option(False, "--structured",
                                    help="Remove whole expansion channels of every inverted-"
                                         "residual / MBConv block (smaller and faster model) "
                                         "instead of zeroing weights."),
    ratio: float = typer.Option(0.3, "--ratio", help="--structured: share of expansion channels "
                                                     "to remove (counts rounded to multiples of 8)."),
    mac_reduction: float | None = typer.Option(
        None, "--mac-reduction", help="--structured: choose the ratio that gives this share "
                                      "fewer multiply-accumulates instead (e.g. 0.3)."),
    criterion: str = typer.Option("energy", "--criterion",
                                  help="--structured: channel importance: energy (what the channel "
                                       "adds to the block's output on training images), l1 / l2 "
                                       "(expand filter norm) or bn (BatchNorm |gamma|)."),
    reconstruct: bool = typer.Option(True, "--reconstruct/--no-reconstruct",
                                     help="--structured: refit each narrowed block's project conv "
                                          "by least squares to reproduce the original block "
                                          "(else only re-estimate BatchNorm statistics)."),
    per_block: bool = typer.Option(False, "--per-block",
                                   help="--structured: the same ratio in every block instead of "
                                        "one global threshold."),
    distill: bool = typer.Option(False, "--distill",
                                 help="--structured: fine-tune by knowledge distillation from "
                                      "the unpruned model (KL on softened outputs + CE)."),
    no_progress: bool = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP),
) -> None:
    """Magnitude-prune a trained model during a short fine-tune (native Keras 3).

    Sparsity rises along a polynomial schedule; pruned weights are exactly zero in the
    saved model (no wrapper layers), so `edgecls export OUT` works as for any run.
    Reports sparsity per layer, test accuracy and the gzip-compressed size of the
    weights before/after. With --structured, whole expansion channels are removed instead
    (ranked by --criterion), each narrowed block is refit by least squares to reproduce the
    original, and the fine-tune keeps the epoch best on the validation split; the report
    shows parameters, multiply-accumulates, size and accuracy before/after.
    Method and measured figures: docs/pruning.md.
    """
    from rich.console import Console

    if structured:
        options = dict(ratio=ratio, mac_reduction=mac_reduction, criterion=criterion, per_block=per_block,
                       reconstruct=reconstruct, distill=distill)
    else:
        options = dict(sparsity=sparsity, min_weights=min_weights)
    result = prune_run_dir(run, out, structured, progress=not no_progress, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, **options)
    console = Console()
    (_render_structured if structured else _render_magnitude)(result.report, console)
    console.print(f"pruned run: {result.run.path} (export it with `edgecls export {result.run.path}`)")


def _render_magnitude(report: Any, console: Any) -> None:
    from rich.table import Table

    layers = Table(title=f"sparsity per layer (target {report.sparsity_target:.0%})")
    layers.add_column("kernel")
    layers.add_column("sparsity", justify="right")
    for name, value in report.layers.items():
        layers.add_row(name, f"{value:.1%}")
    console.print(layers)
    summary = Table(title="before / after")
    for column in ("", "before", "after"):
        summary.add_column(column, justify="right")
    summary.add_row("test accuracy %", f"{100 * report.accuracy_before:.2f}",
                    f"{100 * report.accuracy_after:.2f}")
    summary.add_row("weights gzip KB", f"{report.gzip_bytes_before / 1024:.1f}",
                    f"{report.gzip_bytes_after / 1024:.1f}")
    summary.add_row("overall sparsity", "-", f"{report.overall_sparsity:.1%}")
    console.print(summary)


def _render_structured(report: Any, console: Any) -> None:
    """Before/after table: parameters, MACs, float32 size and test accuracy."""
    from rich.table import Table

    changed = sum(1 for before, after in report.blocks.values() if after < before)
    table = Table(title=f"structured pruning ({report.criterion}, ratio {report.ratio:g}, "
                        f"{changed}/{len(report.blocks)} blocks narrowed)")
    for column in ("", "before", "after", "change"):
        table.add_column(column, justify="right")
    rows = (("parameters", report.before.parameters, report.after.parameters),
            ("MACs (M)", report.before.macs / 1e6, report.after.macs / 1e6),
            ("float32 weights KB", report.before.weights_bytes / 1024,
             report.after.weights_bytes / 1024))
    for label, before, after in rows:
        table.add_row(label, f"{before:,.1f}", f"{after:,.1f}", f"{after / before - 1:+.1%}")
    table.add_row("test accuracy %", f"{100 * report.accuracy_before:.2f}",
                  f"{100 * report.accuracy_after:.2f}",
                  f"{100 * (report.accuracy_after - report.accuracy_before):+.2f} pp "
                  f"(no fine-tune: {100 * report.accuracy_pruned:.2f})")
    console.print(table)
    if report.epochs:
        kept = f"epoch {report.best_epoch}" if report.best_epoch else "the weights before it"
        console.print(f"fine-tune: kept {kept}, the best on the validation split "
                      f"({', '.join(f'{100 * a:.1f}' for a in report.val_accuracy)} %)")
