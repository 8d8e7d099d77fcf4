"""``Run.prune``: magnitude or structured pruning of a run into a new run (``edgecls prune``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.api import html
from edgecls.config import from_dict


@dataclass
class PruneResult:
    """The pruned run (export it like any other) and what pruning did (``prune_report.json``)."""

    run: Any  # edgecls.Run
    report: Any  # PruneReport (magnitude) or StructuredReport

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.report)

    def _repr_html_(self) -> str:
        r = self.report
        rows = [["test accuracy %", 100 * r.accuracy_before, 100 * r.accuracy_after]]
        if getattr(r, "kind", "") == "structured":
            rows += [["parameters", r.before.parameters, r.after.parameters],
                     ["MACs (M)", r.before.macs / 1e6, r.after.macs / 1e6]]
        else:
            rows += [["weights gzip KB", r.gzip_bytes_before / 1024, r.gzip_bytes_after / 1024]]
        return html.STYLE + html.table(["", "before", "after"], rows, caption=f"pruned run {self.run.path}")


def prune_run_dir(run: str | Path, out: str | Path | None = None, structured: bool = False,
                  progress: bool = True, **options: Any) -> PruneResult:
    """Prunes a run into a new run (default: ``RUN-pruned``), fine-tuning while it does.

    Args:
        structured: remove whole expansion channels (``StructuredConfig``) instead of
            zeroing weights (``PruneConfig``).
        progress: a spinner with the fine-tune's epoch line.
        options: fields of that config (``sparsity``, ``epochs``, ``ratio``, ...); None
            means its default; a field of the other method is a ConfigError.
    """
    from edgecls.api.run import Run
    from edgecls.optimize.prune import PruneConfig
    from edgecls.optimize.structured import StructuredConfig
    from edgecls.present.progress import status_line
    from edgecls.present.tf_import import import_tensorflow_muted

    config = StructuredConfig if structured else PruneConfig
    given = {k: v.lower() if k == "criterion" and v else v for k, v in options.items() if v is not None}
    method = from_dict(config, given, source="--structured options" if structured else "prune options")
    method.check()
    out = Path(out) if out is not None else Path(run).with_name(Path(run).name + "-pruned")
    import_tensorflow_muted()
    doing = ("scoring, pruning and refitting channels, then fine-tuning" if structured
             else "pruning while fine-tuning")
    with status_line(doing, enabled=progress) as update:
        report = method.run(Path(run), out, on_epoch=lambda epoch, logs: update(
            epoch_line(epoch, method.epochs, logs)))
    return PruneResult(Run(out), report)


def epoch_line(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    line = f"epoch {epoch}/{epochs}: loss {logs.get('loss', float('nan')):.4f}"
    if "val_top1" in logs:
        line += f", validation top-1 {logs['val_top1']:.4f}"
    return line
