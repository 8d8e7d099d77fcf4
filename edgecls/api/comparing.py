"""``compare_runs``: is the next model really better than the deployed one (``edgecls compare``)?"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgecls.api import html
from edgecls.atomic import write_text_atomic
from edgecls.export.compare import Comparison, SliceResult, compare_models, resolve_side
from edgecls.stats import BETTER, WORSE

COLUMNS = ("images", "n", "OLD", "NEW", "NEW - OLD (95% interval)", "verdict")


@dataclass
class ModelComparison:
    """Both models on the same held-out images. ``comparison`` holds every slice
    (``edgecls.export.compare.Comparison``); ``to_dict()`` is the report ``--json`` writes
    and ``edgecls deploy --comparison`` reads."""

    comparison: Comparison
    json_path: Path | None = None

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``no resolved difference`` (NEW against OLD, overall)."""
        return self.comparison.verdict

    @property
    def per_class(self) -> dict[str, SliceResult]:
        return dict(self.comparison.per_class)

    def summary(self) -> str:
        """The one-line verdict, with both accuracies and the interval."""
        return self.comparison.summary()

    def rows(self) -> list[tuple[str, ...]]:
        """The table's rows (``COLUMNS``): all held-out images, the two slices, each class."""
        result = self.comparison
        named = [("all held-out", result.overall), ("new since OLD", result.new_images),
                 ("OLD's test images", result.old_test_images)]
        named += [(f"  class {name}", r) for name, r in result.per_class.items()]
        return [_cells(name, row) for name, row in named]

    def notes(self) -> list[str]:
        """Lines under the table: classes only NEW knows, NEW test images left out."""
        result = self.comparison
        lines = []
        for name, info in result.new_only_classes.items():
            accuracy = "-" if info["new_accuracy"] is None else f"{100 * info['new_accuracy']:.2f}%"
            lines.append(f"class {name} only NEW knows: NEW {accuracy} on {info['images']} test images")
        if result.excluded_trained_by_old:
            lines.append(f"left out: {result.excluded_trained_by_old} test image(s) of NEW that OLD trained or "
                         "validated on (train NEW with --init-from OLD to keep OLD's held-out images held out)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return self.comparison.to_dict()

    def _repr_html_(self) -> str:
        result = self.comparison
        colour = {BETTER: "#1a7f37", WORSE: "#b3261e"}.get(self.verdict, "inherit")
        table = html.table(COLUMNS, self.rows(), caption=f"NEW {result.new.path} vs OLD {result.old.path}")
        return (html.STYLE + table + "".join(html.note(line) for line in self.notes())
                + f"<p style='color:{colour}'><b>{html.escape(self.summary())}</b></p>")


def _cells(name: str, row: SliceResult | None) -> tuple[str, ...]:
    if row is None:
        return name, "0", "-", "-", "-", "-"
    d = row.paired
    return (name, str(row.images), f"{100 * row.old_accuracy:.2f}%", f"{100 * row.new_accuracy:.2f}%",
            f"{0.0 - d.drop_pp:+.2f} [{0.0 - d.high_pp:+.2f}, {0.0 - d.low_pp:+.2f}]", row.verdict)


def compare_runs(new: str | Path, old: str | Path, json_path: str | Path | None = None,
                 new_run: str | Path | None = None, old_run: str | Path | None = None) -> ModelComparison:
    """Compares two models on the same held-out images (``edgecls compare``): NEW's test
    split, minus what OLD trained on, on the classes both know; the paired difference with
    its 95% interval (the export gate's statistics) overall, on the images new since OLD,
    on OLD's own test images (forgetting shows there) and per class.

    Args:
        new: the new model: a run directory or an exported artifact.
        old: the deployed model: a run directory or an exported artifact.
        json_path: also write the report to this JSON file (``edgecls deploy --comparison`` reads it).
        new_run: the run that trained NEW, when NEW is an artifact outside its run's ``export/`` folder.
        old_run: the run that trained OLD, likewise.

    Raises:
        ModelError: a path is neither a finished run nor a model file, or an artifact's run is unknown.
        DataError: NEW's run has no test split, or no test image of a class both know.
    """
    new_side, old_side = resolve_side(new, new_run), resolve_side(old, old_run)
    if "run" in (new_side.kind, old_side.kind):  # a run's float model: Keras, TensorFlow muted
        from edgecls.present.tf_import import import_tensorflow_muted

        import_tensorflow_muted()
    result = ModelComparison(compare_models(new_side, old_side), Path(json_path) if json_path else None)
    if result.json_path is not None:
        write_text_atomic(result.json_path, json.dumps(result.to_dict(), indent=1) + "\n")
    return result
